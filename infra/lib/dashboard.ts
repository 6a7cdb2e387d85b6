/**
 * The night on one CloudWatch dashboard: the picture the operator page (`serve`'s /ops) shows
 * locally, drawn from metrics. The project's own metrics (namespace BatchOrchestrator, EMF from
 * each function, shared/src/metrics.rs), the queues' dead letters, and Bedrock's own batch
 * metrics (namespace AWS/Bedrock/Batch, dimension ModelId; read with SEARCH so every model
 * shows without naming its id).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface DashboardInputs {
  readonly prefix: string;
  readonly queues: Readonly<Record<string, { dlq: sqs.Queue }>>;
  readonly intakeEventsDlq: sqs.Queue;
}

const PERIOD = Duration.minutes(5);

/**
 * One of the project's metrics from every function that emits it (a line each): EMF documents
 * carry the dimension `function`, and `dims` any others (`pools_sealed` adds `by`).
 */
function ours(name: string, statistic = 'Sum', dims = 'function'): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{BatchOrchestrator,${dims}} MetricName="${name}"', '${statistic}', 300)`,
    label: name,
    period: PERIOD,
  });
}

/** Bedrock's batch metric `name` for every model. */
function bedrockBatch(name: string, statistic: string): cloudwatch.MathExpression {
  return new cloudwatch.MathExpression({
    expression: `SEARCH('{AWS/Bedrock/Batch,ModelId} MetricName="${name}"', '${statistic}', 300)`,
    label: name,
    period: PERIOD,
  });
}

/** The dashboard's widgets, in reading order (exported for the tests). */
export function widgets(i: DashboardInputs): cloudwatch.IWidget[] {
  const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
    new cloudwatch.GraphWidget({ title, left, width, height: 6 });
  const dlqs = [
    ...Object.entries(i.queues).map(([name, q]) =>
      q.dlq.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum', label: `${name} DLQ` })),
    i.intakeEventsDlq.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum', label: 'intake-events DLQ' }),
  ];
  return [
    graph('Intake: requests and answers', [
      ours('intents_accepted'), ours('intents_duplicate'), ours('intents_rejected', 'Sum', 'function,reason'),
    ]),
    graph('Pools: intents pooled, shared jobs sealed', [
      ours('intents_pooled'), ours('pools_sealed', 'Sum', 'by,function'),
    ]),
    graph('Jobs: created, waiting for a slot, refused, re-run', [
      ours('jobs_submitted'), ours('jobs_waiting_for_slot'), ours('jobs_refused'), ours('jobs_rerun'),
    ]),
    graph('Records: answered, failed, on-demand, redriven', [
      ours('records_succeeded'), ours('records_failed'), ours('records_on_demand'), ours('records_redriven'),
    ]),
    graph('Deadlines: intents at risk (max per pass)', [ours('intents_at_risk', 'Maximum')]),
    graph('Cost: USD on-demand cost over batch', [ours('on_demand_extra_usd')]),
    graph('Completion webhooks: delivered, failed tries', [ours('webhooks_delivered'), ours('webhooks_failed')]),
    graph('Dead letters per queue', dlqs),
    graph('Bedrock batch: records pending (per model)', [bedrockBatch('NumberOfRecordsPendingProcessing', 'Average')]),
    graph('Bedrock batch: input tokens processed per minute', [bedrockBatch('NumberOfInputTokensProcessedPerMinute', 'Average')]),
  ];
}

/** The dashboard, named after the stack's prefix. */
export function nightDashboard(scope: Construct, i: DashboardInputs): cloudwatch.Dashboard {
  const dashboard = new cloudwatch.Dashboard(scope, 'NightDashboard', {
    dashboardName: `${i.prefix}-night`,
    defaultInterval: Duration.hours(12),
  });
  const all = widgets(i);
  for (let k = 0; k < all.length; k += 3) dashboard.addWidgets(...all.slice(k, k + 3));
  return dashboard;
}
