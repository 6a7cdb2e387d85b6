/**
 * The EventBridge rules mirror shared/src/topology.rs RULES: the TS table is compared with the
 * Rust table (parsed from source) and the synthesized rules with the TS table.
 */
import { QUEUES, RULES } from '../lib/topology';
import { resourcesOf, synth } from './helpers';
import { rustQueueNames, rustRules } from './rust-source';

const { stack, template } = synth();

describe('routing rules', () => {
  it('when compared with topology.rs RULES should be the same rules', () => {
    const ts = RULES.map((r) => ({ ...r, detailTypes: [...r.detailTypes] }));
    expect(ts).toEqual(rustRules());
  });

  it('when compared with topology.rs Queue::name should name the same queues', () => {
    expect([...QUEUES]).toEqual(rustQueueNames());
  });

  it('when synthesized should make one EventBridge rule per table row, on the right bus, into the right queue', () => {
    // The pattern rules; the reconciler's schedule rule (no pattern) is checked in stack.test.ts.
    const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule')).filter((r) => r.Properties.EventPattern !== undefined);
    expect(rules).toHaveLength(RULES.length);
    const busId = stack.getLogicalId(stack.bus.node.defaultChild as any);
    for (const spec of RULES) {
      const { queue, dlq } = stack.queues[spec.target];
      const queueId = stack.getLogicalId(queue.node.defaultChild as any);
      const dlqId = stack.getLogicalId(dlq.node.defaultChild as any);
      const matching = rules.filter((r) =>
        JSON.stringify(r.Properties.EventPattern) ===
        JSON.stringify({ source: [spec.source], 'detail-type': [...spec.detailTypes] }));
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
    const sends = policies.flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => s.Effect === 'Allow' && [s.Action].flat().includes('sqs:SendMessage'));
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

  it('when named should follow the {prefix}-{queue} and {prefix}-{queue}-dlq convention of the Rust side', () => {
    for (const name of QUEUES) {
      template.hasResourceProperties('AWS::SQS::Queue', { QueueName: `batch-orchestrator-dev-${name}` });
      template.hasResourceProperties('AWS::SQS::Queue', { QueueName: `batch-orchestrator-dev-${name}-dlq` });
    }
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'batch-orchestrator-dev-events' });
  });
});
