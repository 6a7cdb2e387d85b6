/**
 * Settings come from context only; bad values stop the synth naming the key. Bundling is off
 * unless asked for, so synth and tests need neither cargo-lambda nor Docker.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { DEFAULT_RECONCILE_EVERY_MINUTES, readSettings, SettingsError } from '../lib/settings';
import { FUNCTIONS } from '../lib/stack';
import { CDK_JSON_CONTEXT, synth } from './helpers';
import { rustNumericDefaults } from './rust-source';

const read = (overrides: Record<string, unknown> = {}) =>
  readSettings((k) => (k in overrides ? overrides[k] : CDK_JSON_CONTEXT[k]));

describe('settings', () => {
  it('when reading cdk.json should give the Rust defaults', () => {
    const s = read();
    expect(s.stage).toBe('dev');
    expect(s.modelIds[0]).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(s.quotas).toEqual({
      minRecordsPerJob: 100,
      maxRecordsPerJob: 50000,
      maxRecordsPerFile: 50000,
      maxFileBytes: 1024 ** 3,
      maxJobBytes: 5 * 1024 ** 3,
      maxConcurrentJobs: 10,
    });
    expect(s.jobTimeoutHours).toBe(24);
    expect(s.maxImagesPerIntent).toBe(1000);
    expect(s.stuckAfterSecs).toBe(900);
    expect(s.reconcileEveryMinutes).toBe(5);
    expect(s.bundle).toBe(false);
  });

  it('when reconcileEveryMinutes is absent should default to 5, and take a -c string', () => {
    expect(DEFAULT_RECONCILE_EVERY_MINUTES).toBe(5);
    expect(read({ reconcileEveryMinutes: undefined }).reconcileEveryMinutes).toBe(5);
    expect(read({ reconcileEveryMinutes: '15' }).reconcileEveryMinutes).toBe(15);
    expect(read({ reconcileEveryMinutes: 1440 }).reconcileEveryMinutes).toBe(1440);
  });

  it('when compared with Settings::local and Quotas::default in Rust should use the same defaults', () => {
    const rust = rustNumericDefaults();
    const s = read();
    const ours: Record<string, number> = {
      ...s.quotas,
      maxImagesPerIntent: s.maxImagesPerIntent,
      jobTimeoutHours: s.jobTimeoutHours,
      outboxGraceSecs: s.outboxGraceSecs,
      stuckAfterSecs: s.stuckAfterSecs,
      intentTtlDays: s.intentTtlDays,
      maxOutputTokens: s.maxOutputTokens,
    };
    for (const [key, value] of Object.entries(ours)) {
      expect([key, rust.get(key)]).toEqual([key, value]);
    }
  });

  it('when given as -c strings should parse lists, numbers, JSON objects and booleans', () => {
    const s = read({
      modelIds: 'a.b-v1:0, us.anthropic.c-v1:0',
      jwtAudience: 'x,y',
      apiThrottleRate: '7',
      quotas: JSON.stringify({ ...(CDK_JSON_CONTEXT.quotas as object), maxConcurrentJobs: 20 }),
      bundle: 'true',
    });
    expect(s.modelIds).toEqual(['a.b-v1:0', 'us.anthropic.c-v1:0']);
    expect(s.jwtAudience).toEqual(['x', 'y']);
    expect(s.apiThrottleRate).toBe(7);
    expect(s.quotas.maxConcurrentJobs).toBe(20);
    expect(s.bundle).toBe(true);
  });

  it.each([
    ['jobTimeoutHours', 200, /jobTimeoutHours/],
    ['jobTimeoutHours', '12', /24 to 168/],
    ['modelIds', '', /modelIds/],
    ['modelIds', 'has space', /not a model id/],
    ['jwtIssuer', 'http://plain', /https/],
    ['jwtAudience', undefined, /jwtAudience/],
    ['stage', 'Prod_1', /stage/],
    ['quotas', { minRecordsPerJob: 1 }, /quotas\.maxRecordsPerJob/],
    ['quotas', '{"minRecordsPerJob": 900, "maxRecordsPerJob": 100, "maxRecordsPerFile": 1, "maxFileBytes": 1, "maxJobBytes": 1, "maxConcurrentJobs": 1}', /minRecordsPerJob/],
    ['apiThrottleBurst', 'lots', /apiThrottleBurst/],
    ['bundle', 'yes', /bundle/],
    ['logLevel', 'LOUD', /logLevel/],
    ['reconcileEveryMinutes', 0, /reconcileEveryMinutes/],
    ['reconcileEveryMinutes', '2.5', /reconcileEveryMinutes/],
    ['reconcileEveryMinutes', 'often', /reconcileEveryMinutes/],
    ['reconcileEveryMinutes', 1441, /1 to 1440/],
  ])('when %s is %j should refuse it, naming the key', (key, value, message) => {
    expect(() => read({ [key]: value })).toThrow(SettingsError);
    expect(() => read({ [key]: value })).toThrow(message);
  });
});

describe('bundling', () => {
  it('when bundle is false should skip building even though the CLI asks to bundle every stack', () => {
    // `cdk synth` passes aws:cdk:bundling-stacks = ["**"]; with no cargo-lambda and no Docker
    // here, a bundling attempt would fail, so a clean synth proves nothing was built.
    const { stack, template } = synth({}, undefined, ['**']);
    expect(stack.bundlingRequired).toBe(false);
    template.resourceCountIs('AWS::Lambda::Function', FUNCTIONS.length);
  });

  it('when bundle is false should make the template undeployable (a CloudFormation rule that always fails)', () => {
    const { template } = synth();
    const rules = template.toJSON().Rules as Record<string, any>;
    expect(rules.RefuseUnbundledDeploy.Assertions).toEqual([{
      Assert: { 'Fn::Equals': ['bundle=false', 'bundle=true'] },
      AssertDescription: expect.stringContaining('-c bundle=true'),
    }]);
  });

  it('when bundle is false should say so in a warning', () => {
    const app = new App({ context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
    const stack = buildApp(app);
    const warnings = stack.node.metadata.filter((m) => m.type === 'aws:cdk:warning');
    expect(warnings.map((w) => String(w.data))).toEqual([expect.stringContaining('bundle=true')]);
  });
});
