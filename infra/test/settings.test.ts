/**
 * Settings come from context only; bad values stop the synth naming the key. Bundling is off
 * unless asked for, so synth and tests need neither cargo-lambda nor Docker.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import {
  BELOW_MINIMUM_POLICIES,
  DEFAULT_BELOW_MINIMUM_POLICY,
  DEFAULT_NIGHTLY_CRON,
  DEFAULT_RECONCILE_EVERY_MINUTES,
  readSettings,
  SettingsError,
} from '../lib/settings';
import { FUNCTIONS } from '../lib/stack';
import { CDK_JSON_CONTEXT, synth } from './helpers';
import { rustBelowMinimum, rustNumericDefaults } from './rust-source';

const read = (overrides: Record<string, unknown> = {}) =>
  readSettings((k) => (k in overrides ? overrides[k] : CDK_JSON_CONTEXT[k]));

describe('settings', () => {
  it('when reading cdk.json should give the Rust defaults', () => {
    const s = read();
    expect(s.stage).toBe('dev');
    // The catalog's default model (shared/src/domain/catalog.rs), through the us. profile.
    expect(s.modelIds).toEqual(['us.anthropic.claude-haiku-4-5-20251001-v1:0', 'us.amazon.nova-lite-v1:0']);
    expect(s.quotas).toEqual({
      minRecordsPerJob: 100,
      maxRecordsPerJob: 50000,
      maxRecordsPerFile: 50000,
      maxFileBytes: 1e9,
      maxJobBytes: 5e9,
      maxConcurrentJobs: 10,
    });
    expect(s.jobTimeoutHours).toBe(24);
    expect(s.maxImagesPerIntent).toBe(50000);
    expect(s.stuckAfterSecs).toBe(900);
    expect(s.reconcileEveryMinutes).toBe(5);
    expect(s.poolDeadlineSecs).toBe(21600);
    expect(s.belowMinimumPolicy).toBe('on_demand');
    expect(s.onDemandConcurrency).toBe(4);
    expect(s.maxRecordAttempts).toBe(3);
    expect(s.modelPrices).toBeUndefined();
    expect(s.bundle).toBe(false);
  });

  it('when the pool and on-demand settings are absent should use their defaults, and take -c strings', () => {
    const absent = read({ poolDeadlineSecs: undefined, belowMinimumPolicy: '', onDemandConcurrency: null, maxRecordAttempts: undefined });
    expect([absent.poolDeadlineSecs, absent.belowMinimumPolicy, absent.onDemandConcurrency, absent.maxRecordAttempts])
      .toEqual([21600, 'on_demand', 4, 3]);
    const set = read({ poolDeadlineSecs: '3600', belowMinimumPolicy: ' Pad ', onDemandConcurrency: '8', maxRecordAttempts: 1 });
    expect([set.poolDeadlineSecs, set.belowMinimumPolicy, set.onDemandConcurrency, set.maxRecordAttempts])
      .toEqual([3600, 'pad', 8, 1]);
    expect(read({ belowMinimumPolicy: 'wait' }).belowMinimumPolicy).toBe('wait');
  });

  it('when deadline settings are given should check them as the Rust config does', () => {
    const s = read({ resultsBy: '07:00', resultsTz: 'Europe/Berlin', onDemandRates: '{"m.x-v1:0": {"requestsPerMinute": 200, "tokensPerMinute": 400000}}' });
    expect([s.resultsBy, s.resultsTz, s.onDemandRates]).toEqual(['07:00', 'Europe/Berlin', { 'm.x-v1:0': { requestsPerMinute: 200, tokensPerMinute: 400000 } }]);
    expect([read().minDeadlineSecs, read().deadlineMarginSecs, read().resultsBy]).toEqual([900, 600, undefined]);
    expect(() => read({ resultsBy: '7am' })).toThrow(/resultsBy/);
    expect(() => read({ onDemandRates: { 'm.x-v1:0': { requestsPerMinute: 0, tokensPerMinute: 1 } } })).toThrow(/requestsPerMinute/);
  });

  it('when compared with BelowMinimum in Rust should accept the same policies and default to the same one', () => {
    const rust = rustBelowMinimum();
    expect([...BELOW_MINIMUM_POLICIES].sort()).toEqual([...rust.values].sort());
    expect(DEFAULT_BELOW_MINIMUM_POLICY).toBe(rust.default);
    expect(read().belowMinimumPolicy).toBe(rust.default);
  });

  it('when modelPrices is given as an object or a -c JSON string should keep it as given', () => {
    const prices = {
      'anthropic.claude-3-haiku-20240307-v1:0': { inputPerMtok: 0.25, outputPerMtok: 1.25 },
      'us.anthropic.claude-3-5-sonnet-20240620-v1:0': { inputPerMtok: 3, outputPerMtok: 0 },
    };
    expect(read({ modelPrices: prices }).modelPrices).toEqual(prices);
    expect(read({ modelPrices: JSON.stringify(prices) }).modelPrices).toEqual(prices);
    expect(read({ modelPrices: '  ' }).modelPrices).toBeUndefined();
  });

  it('when reconcileEveryMinutes is absent should default to 5, and take a -c string', () => {
    expect(DEFAULT_RECONCILE_EVERY_MINUTES).toBe(5);
    expect(read({ reconcileEveryMinutes: undefined }).reconcileEveryMinutes).toBe(5);
    expect(read({ reconcileEveryMinutes: '15' }).reconcileEveryMinutes).toBe(15);
    expect(read({ reconcileEveryMinutes: 1440 }).reconcileEveryMinutes).toBe(1440);
  });

  it('when the nightly settings are absent should run nightly at 00:30 UTC, and take -c strings', () => {
    expect(DEFAULT_NIGHTLY_CRON).toBe('cron(30 0 * * ? *)');
    const absent = read({ nightlyCron: undefined, nightlyEnabled: undefined });
    expect([absent.nightlyCron, absent.nightlyEnabled]).toEqual(['cron(30 0 * * ? *)', true]);
    expect(read({ nightlyCron: '  ', nightlyEnabled: '' })).toMatchObject({ nightlyCron: 'cron(30 0 * * ? *)', nightlyEnabled: true });
    expect(read({ nightlyCron: ' cron(0 3 * * ? *) ' }).nightlyCron).toBe('cron(0 3 * * ? *)');
    expect(read({ nightlyCron: 'rate(1 day)' }).nightlyCron).toBe('rate(1 day)');
    expect(read({ nightlyEnabled: 'false' }).nightlyEnabled).toBe(false);
    expect(read({ nightlyEnabled: false }).nightlyEnabled).toBe(false);
    expect(read({ nightlyEnabled: 'TRUE' }).nightlyEnabled).toBe(true);
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
      poolDeadlineSecs: s.poolDeadlineSecs,
      poolBelowRecords: s.poolBelowRecords,
      onDemandConcurrency: s.onDemandConcurrency,
      maxRecordAttempts: s.maxRecordAttempts,
      createBackoffSecs: s.createBackoffSecs,
      maxOpenIntentsPerUser: s.maxOpenIntentsPerUser,
      maxImagesPerUserPerDay: s.maxImagesPerUserPerDay,
      minDeadlineSecs: s.minDeadlineSecs,
      deadlineMarginSecs: s.deadlineMarginSecs,
    };
    for (const [key, value] of Object.entries(ours)) {
      expect([key, rust.get(key)]).toEqual([key, value]);
    }
  });

  it('when a bundled (deployable) synth keeps the placeholders should refuse, naming what to set', () => {
    // cdk.json ships a placeholder issuer and audience and no alarm topic: fine to synth and
    // test, never to deploy.
    expect(() => read({ bundle: true })).toThrow(/jwtIssuer.*jwtAudience.*alarmTopicArn/);
    expect(() => read({
      bundle: true,
      jwtIssuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123',
      jwtAudience: ['4k1b2c3d4e5f6g7h8i9j0'],
    })).toThrow(/alarmTopicArn/);
    const ok = read({
      bundle: true,
      jwtIssuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123',
      jwtAudience: ['4k1b2c3d4e5f6g7h8i9j0'],
      alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms',
    });
    expect(ok.bundle).toBe(true);
    expect(read().bundle).toBe(false);
  });

  it('when an application inference profile is configured should need its family and foundation model', () => {
    const app = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3';
    expect(read({ modelFamilies: { [app]: { family: 'nova', foundationModel: 'amazon.nova-lite-v1:0' } } }).modelFamilies)
      .toEqual({ [app]: { family: 'nova', foundationModel: 'amazon.nova-lite-v1:0' } });
    expect(() => read({ modelFamilies: { [app]: { family: 'llama', foundationModel: 'x.y' } } })).toThrow(/family/);
    expect(() => read({ modelFamilies: { 'us.amazon.nova-lite-v1:0': { family: 'nova', foundationModel: 'x.y' } } }))
      .toThrow(/application inference profile/);
  });

  it('when given as -c strings should parse lists, numbers, JSON objects and booleans', () => {
    const s = read({
      modelIds: 'a.b-v1:0, us.anthropic.c-v1:0',
      jwtAudience: 'x,y',
      apiThrottleRate: '7',
      quotas: JSON.stringify({ ...(CDK_JSON_CONTEXT.quotas as object), maxConcurrentJobs: 20 }),
      bundle: 'true',
      jwtIssuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123',
      alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alarms',
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
    ['nightlyCron', '30 0 * * ? *', /nightlyCron.*cron\(…\) or rate\(…\)/],
    ['nightlyCron', 'at(2026-01-01T00:30:00)', /nightlyCron/],
    ['nightlyCron', 'cron()', /nightlyCron/],
    ['nightlyCron', 'cron(30 0 * * ? *', /nightlyCron/],
    ['nightlyCron', 30, /nightlyCron/],
    ['nightlyEnabled', 'sometimes', /nightlyEnabled/],
    ['nightlyEnabled', 1, /nightlyEnabled/],
    ['poolDeadlineSecs', 0, /poolDeadlineSecs/],
    ['poolBelowRecords', -1, /poolBelowRecords/],
    ['poolBelowRecords', 'many', /poolBelowRecords/],
    ['poolDeadlineSecs', '1.5', /poolDeadlineSecs/],
    ['poolDeadlineSecs', 'six hours', /poolDeadlineSecs/],
    ['belowMinimumPolicy', 'sometimes', /wait, pad, on_demand/],
    ['belowMinimumPolicy', 'on-demand', /belowMinimumPolicy/],
    ['belowMinimumPolicy', 3, /belowMinimumPolicy/],
    ['onDemandConcurrency', 0, /onDemandConcurrency/],
    ['onDemandConcurrency', '-4', /onDemandConcurrency/],
    ['maxRecordAttempts', 0, /maxRecordAttempts/],
    ['maxRecordAttempts', '2.5', /maxRecordAttempts/],
    ['modelPrices', '{not json', /modelPrices.*not valid JSON/],
    ['modelPrices', '[]', /modelPrices/],
    ['modelPrices', {}, /at least one model/],
    ['modelPrices', { 'has space': { inputPerMtok: 1, outputPerMtok: 1 } }, /not a model id/],
    ['modelPrices', { 'a.b-v1:0': 1 }, /modelPrices\.a\.b-v1:0/],
    ['modelPrices', { 'a.b-v1:0': { inputPerMtok: 1 } }, /modelPrices\.a\.b-v1:0\.outputPerMtok/],
    ['modelPrices', { 'a.b-v1:0': { inputPerMtok: -1, outputPerMtok: 1 } }, /inputPerMtok/],
    ['modelPrices', { 'a.b-v1:0': { inputPerMtok: '1', outputPerMtok: 1 } }, /inputPerMtok/],
    ['modelPrices', { 'a.b-v1:0': { inputPerMtok: 1, outputPerMtok: 1, currency: 'EUR' } }, /unknown keys currency/],
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
