/**
 * cdk-nag AwsSolutions: no unacknowledged error finding, each acknowledgment names one finding
 * and gives a real reason, and the checks really run (without the acknowledgments they fail).
 */
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../lib/app';
import { iam5Finding, nagAcknowledgments } from '../lib/nag';
import { BatchOrchestratorStack } from '../lib/stack';
import { CDK_JSON_CONTEXT, synth } from './helpers';

function findings(stack: BatchOrchestratorStack) {
  const report = new AwsSolutionsChecks().validateScope(stack);
  const errors = report.violations.filter((v) => v.severity === 'error');
  const warnings = report.violations.filter((v) => v.severity !== 'error');
  return { errors, warnings };
}

describe('cdk-nag AwsSolutions', () => {
  const variants: Array<[string, Record<string, unknown>, { account: string; region: string } | undefined]> = [
    ['cdk.json defaults, environment-agnostic', {}, undefined],
    ['cdk.json defaults, concrete account and region', {}, { account: '123456789012', region: 'eu-west-1' }],
    ['geo inference profiles', { modelIds: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0,eu.amazon.nova-pro-v1:0' }, { account: '123456789012', region: 'us-east-1' }],
  ];

  it.each(variants)('when synthesized with %s should leave no unacknowledged error', (label, ctx, env) => {
    const { stack, app } = synth(ctx, env);
    const { errors, warnings } = findings(stack);
    // eslint-disable-next-line no-console
    console.log(`cdk-nag (${label}): ${errors.length} errors, ${warnings.length} warnings, ` +
      `${nagAcknowledgments(stack).reduce((n, [, a]) => n + a.length, 0)} acknowledgments`);
    expect(errors.map((e) => `${e.ruleName} at ${e.violatingResources.map((r) => r.constructPath).join(', ')}`)).toEqual([]);
    // The CLI path: the plugin is registered on the app, so a finding would stop the synth.
    expect(() => app.synth()).not.toThrow();
  });

  it('when acknowledging should name one finding each and give a reason of substance', () => {
    const { stack } = synth({ modelIds: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0' });
    const acks = nagAcknowledgments(stack).flatMap(([, a]) => a);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) {
      if (a.id !== 'AwsSolutions-SQS3') {
        expect(a.id).toMatch(/^AwsSolutions-IAM5\[Resource::.+\]$/);
        expect(a.id).not.toMatch(/\[Resource::\*\]/);
      }
      expect(a.reason.length).toBeGreaterThanOrEqual(80);
    }
  });

  it('when a queue is not a redrive DLQ should acknowledge SQS3 on the intake-events DLQ only (a DLQ of EventBridge targets)', () => {
    const { stack } = synth();
    const sqs3 = nagAcknowledgments(stack).filter(([, acks]) => acks.some((a) => a.id === 'AwsSolutions-SQS3'));
    expect(sqs3.map(([construct]) => construct)).toEqual([stack.intakeEventsDlq]);
    expect(sqs3[0][1]).toHaveLength(1);
    // Without it, cdk-nag reports exactly that queue.
    const bare = new BatchOrchestratorStack(
      new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } }), 'Bare', { settings: stack.settings });
    const found = findings(bare).errors.filter((e) => e.ruleName === 'AwsSolutions-SQS3');
    expect(found.flatMap((e) => e.violatingResources.map((r) => r.constructPath))).toEqual(['Bare/IntakeEventsDlq/Resource']);
  });

  it('when status-watcher and reconciler invoke geo inference profiles should acknowledge the any-region model ARN on their roles', () => {
    const { stack } = synth({ modelIds: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0' });
    const anyRegion = stack.modelArns.filter((a) => a.includes('*'));
    expect(anyRegion).toEqual([expect.stringMatching(/:bedrock:\*::foundation-model\/anthropic\.claude-3-5-sonnet-20240620-v1:0$/)]);
    const acks = new Map(nagAcknowledgments(stack));
    for (const name of ['status-watcher', 'reconciler'] as const) {
      const ids = (acks.get(stack.functions[name].role!) ?? []).map((a) => a.id);
      expect(ids).toContain(iam5Finding(stack, anyRegion[0]));
    }
  });

  it('when the acknowledgments are left out should report the wildcard findings (the checks really run)', () => {
    const app = new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const stack = buildApp(app);
    // A fresh stack of the same shape, without the acknowledgments buildApp recorded.
    const bare = new BatchOrchestratorStack(
      new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } }), 'Bare', { settings: stack.settings });
    const { errors } = findings(bare);
    expect(errors.map((e) => e.ruleName)).toEqual(expect.arrayContaining([expect.stringMatching(/^AwsSolutions-IAM5\[/)]));
    expect(findings(stack).errors).toEqual([]);
  });

  it('when synthesized should keep each acknowledgment and its reason in the template metadata', () => {
    const { stack, template } = synth();
    const resources = template.toJSON().Resources as Record<string, any>;
    const policyId = stack.getLogicalId((stack.bedrockRole.node.findChild('DefaultPolicy').node.defaultChild) as any);
    const rules = (resources[policyId].Metadata.cdk_nag.rules_to_suppress as Array<{ id: string; reason: string }>)
      .filter((r) => r.id.startsWith('AwsSolutions-'));
    expect(rules.length).toBeGreaterThanOrEqual(2);
    for (const r of rules) expect(r.reason.length).toBeGreaterThanOrEqual(80);
  });
});
