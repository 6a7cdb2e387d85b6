/**
 * The EventBridge rules mirror shared/src/topology.rs RULES: the TS table is compared with the
 * Rust table (parsed from source) and the synthesized rules with the TS table. Every Rust rule is
 * in the stack and every rule of the stack that feeds a queue is in Rust; the three rules that
 * invoke a function directly (reconciler schedule, S3 uploads and nightly run -> intake) are
 * recognized here and checked in stack.test.ts.
 */
import { QUEUES, RULES, eventPattern } from '../lib/topology';
import { resourcesOf, synth } from './helpers';
import { rustQueueNames, rustRules } from './rust-source';

const { stack, template } = synth();

describe('routing rules', () => {
  it('when compared with topology.rs RULES should be the same rules', () => {
    const ts = RULES.map((r) => ({ ...r, detailTypes: [...r.detailTypes] }));
    expect(ts).toEqual(rustRules());
  });

  it('when Bedrock reports a job should route only ours (batchJobName prefix bo-) to the watcher', () => {
    const bedrock = RULES.find((r) => r.defaultBus)!;
    expect(eventPattern(bedrock)).toEqual({
      source: ['aws.bedrock'],
      'detail-type': ['Batch Inference Job State Change'],
      detail: { batchJobName: [{ prefix: 'bo-' }] },
    });
  });

  it('when compared with topology.rs Queue::name should name the same queues', () => {
    expect([...QUEUES]).toEqual(rustQueueNames());
  });

  /**
   * The stack's rules that invoke a function directly rather than feed a stage's queue: the
   * reconciler's schedule, and intake's S3 Object Created and nightly rules. They are not part
   * of the Rust event->queue topology; stack.test.ts checks them one by one.
   */
  const directRuleIds = () => [stack.reconcileRule, stack.uploadsRule, stack.nightlyRule!]
    .map((r) => stack.getLogicalId(r.node.defaultChild as any));
  const queueIds = () => new Set(Object.keys(resourcesOf(template, 'AWS::SQS::Queue')));
  const functionIds = () => new Set(Object.keys(resourcesOf(template, 'AWS::Lambda::Function')));
  const targetIds = (rule: { Properties: Record<string, any> }): string[] =>
    (rule.Properties.Targets as any[]).map((t) => t.Arn['Fn::GetAtt'][0]);

  it('when synthesized every rule should feed a queue (a topology rule) or be one of the three direct-to-Lambda rules', () => {
    const all = resourcesOf(template, 'AWS::Events::Rule');
    const toQueues = Object.keys(all).filter((k) => targetIds(all[k]).every((t) => queueIds().has(t)));
    const toFunctions = Object.keys(all).filter((k) => targetIds(all[k]).every((t) => functionIds().has(t)));
    expect(toQueues.length + toFunctions.length).toBe(Object.keys(all).length);
    expect(toQueues).toHaveLength(RULES.length);
    expect(toFunctions.sort()).toEqual(directRuleIds().sort());
    const intake = stack.getLogicalId(stack.functions['intake-events'].node.defaultChild as any);
    const reconciler = stack.getLogicalId(stack.functions.reconciler.node.defaultChild as any);
    const [reconcile, uploads, nightly] = directRuleIds();
    expect(targetIds(all[reconcile])).toEqual([reconciler]);
    expect(targetIds(all[uploads])).toEqual([intake]);
    expect(targetIds(all[nightly])).toEqual([intake]);
  });

  it('when synthesized should make one EventBridge rule per table row, on the right bus, into the right queue', () => {
    // The rules feeding a queue; the direct-to-Lambda rules are checked in stack.test.ts.
    const direct = new Set(directRuleIds());
    const rules = Object.entries(resourcesOf(template, 'AWS::Events::Rule'))
      .filter(([k]) => !direct.has(k))
      .map(([, r]) => r);
    expect(rules).toHaveLength(RULES.length);
    for (const r of rules) expect(r.Properties.EventPattern).toBeDefined();
    const busId = stack.getLogicalId(stack.bus.node.defaultChild as any);
    for (const spec of RULES) {
      const { queue, dlq } = stack.queues[spec.target];
      const queueId = stack.getLogicalId(queue.node.defaultChild as any);
      const dlqId = stack.getLogicalId(dlq.node.defaultChild as any);
      const matching = rules.filter((r) =>
        JSON.stringify(r.Properties.EventPattern) === JSON.stringify(eventPattern(spec)));
      expect(matching).toHaveLength(1);
      const rule = matching[0].Properties;
      expect(rule.EventBusName).toEqual(spec.defaultBus ? 'default' : { Ref: busId });
      expect(rule.Targets).toEqual([
        expect.objectContaining({
          Arn: { 'Fn::GetAtt': [queueId, 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
        }),
      ]);
    }
  });

  it('when a rule targets a queue should let only that rule send to it (and to its DLQ)', () => {
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'));
    const topologyQueues = new Set(QUEUES.flatMap((q) => [stack.queues[q].queue, stack.queues[q].dlq])
      .map((c) => stack.getLogicalId(c.node.defaultChild as any)));
    const sends = policies.flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => s.Effect === 'Allow' && [s.Action].flat().includes('sqs:SendMessage'))
      .filter((s: any) => topologyQueues.has(s.Resource['Fn::GetAtt'][0]));
    expect(sends).toHaveLength(RULES.length * 2);
    for (const spec of RULES) {
      const ruleId = stack.getLogicalId(stack.node.findChild(`${spec.name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}Rule`).node.defaultChild as any);
      const mine = sends.filter((s: any) => s.Condition?.ArnEquals?.['aws:SourceArn']?.['Fn::GetAtt']?.[0] === ruleId);
      const { queue, dlq } = stack.queues[spec.target];
      expect(mine.map((s: any) => s.Resource['Fn::GetAtt'][0]).sort()).toEqual(
        [queue, dlq].map((q) => stack.getLogicalId(q.node.defaultChild as any)).sort());
      for (const s of mine) expect(s.Principal).toEqual({ Service: 'events.amazonaws.com' });
    }
  });

  it('when a direct-to-Lambda rule dead-letters should reach only the intake-events DLQ, and that DLQ only from intake\'s two rules', () => {
    const dlqId = stack.getLogicalId(stack.intakeEventsDlq.node.defaultChild as any);
    const sends = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => s.Effect === 'Allow' && [s.Action].flat().includes('sqs:SendMessage'))
      .filter((s: any) => s.Resource['Fn::GetAtt'][0] === dlqId);
    const [, uploads, nightly] = directRuleIds();
    expect(sends.map((s: any) => s.Condition.ArnEquals['aws:SourceArn']['Fn::GetAtt'][0]).sort()).toEqual([uploads, nightly].sort());
    for (const s of sends) expect(s.Principal).toEqual({ Service: 'events.amazonaws.com' });
  });

  it('when named should follow the {prefix}-{queue} and {prefix}-{queue}-dlq convention of the Rust side', () => {
    for (const name of QUEUES) {
      template.hasResourceProperties('AWS::SQS::Queue', { QueueName: `batch-orchestrator-dev-${name}` });
      template.hasResourceProperties('AWS::SQS::Queue', { QueueName: `batch-orchestrator-dev-${name}-dlq` });
    }
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'batch-orchestrator-dev-intake-events-dlq' });
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'batch-orchestrator-dev-events' });
  });
});
