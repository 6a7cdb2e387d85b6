/**
 * Every function gets exactly the variables shared/src/config.rs lists in ENV_VARS: the Rust
 * table is the single source of truth, read here from the source file.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { SET_ONLY_WHEN_CONFIGURED } from '../lib/function-env';
import { FUNCTIONS } from '../lib/stack';
import { resourcesOf, synth } from './helpers';
import { rustEnvVars } from './rust-source';

const { stack, template } = synth();
const functions = resourcesOf(template, 'AWS::Lambda::Function');
const rust = rustEnvVars();

describe('function environment', () => {
  it('when reading config.rs should find its full ENV_VARS table', () => {
    expect(rust.length).toBeGreaterThanOrEqual(20);
    expect(rust.filter((v) => v.required).map((v) => v.name)).toEqual(
      expect.arrayContaining(['INTENTS_TABLE', 'RESULTS_TABLE', 'EVENT_BUS_NAME', 'API_BASE_URL', 'BEDROCK_ROLE_ARN']),
    );
  });

  it('when synthesized should have one Lambda function per binary (intake\'s crate has two)', () => {
    expect(Object.keys(functions)).toHaveLength(FUNCTIONS.length);
    expect(FUNCTIONS.map((f) => f.name).sort()).toEqual(
      ['intake', 'intake-events', 'manifest-builder', 'reconciler', 'status-watcher', 'submitter', 'webhook-sender']);
  });

  it('when a variable is set only when configured should be an optional one of ENV_VARS', () => {
    for (const name of SET_ONLY_WHEN_CONFIGURED) {
      expect(rust.find((v) => v.name === name)).toEqual({ name, required: false });
    }
  });

  it.each(FUNCTIONS.map((f) => f.name))(
    'when %s is synthesized its variables should equal the Rust ENV_VARS, less those set only when configured',
    (name) => {
      const id = stack.getLogicalId(stack.functions[name as keyof typeof stack.functions].node.defaultChild as any);
      const vars = functions[id].Properties.Environment.Variables as Record<string, unknown>;
      expect(Object.keys(vars).sort()).toEqual(rust.map((v) => v.name).filter((n) => !SET_ONLY_WHEN_CONFIGURED.includes(n)).sort());
      for (const v of rust.filter((r) => r.required)) {
        expect(vars[v.name]).toBeDefined();
        expect(vars[v.name]).not.toEqual('');
      }
    },
  );

  it('when every optional setting is configured should set every Rust ENV_VARS variable on every function', () => {
    const app = `arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3`;
    const { template: t } = synth({
      modelIds: ['us.anthropic.claude-haiku-4-5-20251001-v1:0', app],
      modelPrices: { 'anthropic.claude-haiku-4-5-20251001-v1:0': { inputPerMtok: 1, outputPerMtok: 5 } },
      modelFamilies: { [app]: { family: 'nova', foundationModel: 'amazon.nova-lite-v1:0' } },
      modelQuotas: { 'amazon.nova-pro-v1:0': { minRecordsPerJob: 1000 } },
      resultsBy: '07:00',
      resultsTz: 'Europe/Berlin',
      onDemandRates: { 'anthropic.claude-haiku-4-5-20251001-v1:0': { requestsPerMinute: 200, tokensPerMinute: 400000 } },
    });
    const fns = Object.values(resourcesOf(t, 'AWS::Lambda::Function'));
    expect(fns).toHaveLength(FUNCTIONS.length);
    for (const fn of fns) {
      expect(Object.keys(fn.Properties.Environment.Variables).sort()).toEqual(rust.map((v) => v.name).sort());
    }
  });

  it('when one model has quotas of its own should hand them to the functions (MODEL_QUOTAS) and refuse unknown keys', () => {
    const { template: t } = synth({ modelQuotas: '{"amazon.nova-pro-v1:0": {"minRecordsPerJob": 1000}}' });
    for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
      expect(JSON.parse(fn.Properties.Environment.Variables.MODEL_QUOTAS)).toEqual({ 'amazon.nova-pro-v1:0': { minRecordsPerJob: 1000 } });
      expect(fn.Properties.Environment.Variables.REMAINDER_POLICY).toBe('batch');
      expect(fn.Properties.Environment.Variables.IMAGE_POLICY).toBe('economy');
      expect(fn.Properties.Environment.Variables.CREATE_BACKOFF_SECS).toBe('60');
    }
    expect(() => synth({ modelQuotas: { 'amazon.nova-pro-v1:0': { minRecords: 1 } } })).toThrow(/unknown quota minRecords/);
  });

  it('when context chooses the whole-photo image policy should hand it to the functions and refuse others', () => {
    const { template: t } = synth({ imagePolicy: 'whole' });
    for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
      expect(fn.Properties.Environment.Variables.IMAGE_POLICY).toBe('whole');
    }
    expect(() => synth({ imagePolicy: 'crop' })).toThrow(/imagePolicy.*economy, whole/);
  });

  it('when an application inference profile is configured should hand its family to the functions (MODEL_FAMILIES)', () => {
    const app = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3';
    const { template: t } = synth({
      modelIds: ['us.anthropic.claude-haiku-4-5-20251001-v1:0', app],
      modelFamilies: { [app]: { family: 'nova', foundationModel: 'amazon.nova-lite-v1:0' } },
    });
    for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
      expect(JSON.parse(fn.Properties.Environment.Variables.MODEL_FAMILIES)).toEqual({ [app]: 'nova' });
    }
  });

  it('when set should point every function\'s table variables at the stack\'s three tables', () => {
    const ref = (c: { node: { defaultChild?: unknown } }) => ({ Ref: stack.getLogicalId(c.node.defaultChild as any) });
    expect(rust).toContainEqual({ name: 'UPLOADS_TABLE', required: true });
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Environment.Variables.INTENTS_TABLE).toEqual(ref(stack.intentsTable));
      expect(fn.Properties.Environment.Variables.RESULTS_TABLE).toEqual(ref(stack.resultsTable));
      expect(fn.Properties.Environment.Variables.UPLOADS_TABLE).toEqual(ref(stack.uploadsTable));
    }
  });

  it('when set should point API_BASE_URL at the HTTP API endpoint (no trailing slash) for every function', () => {
    const apiId = stack.getLogicalId(stack.api.node.defaultChild as any);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Environment.Variables.API_BASE_URL).toEqual({ 'Fn::GetAtt': [apiId, 'ApiEndpoint'] });
    }
  });

  it('when settings are the cdk.json defaults should pass models and quotas through', () => {
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          ALLOWED_MODEL_IDS: 'us.anthropic.claude-haiku-4-5-20251001-v1:0,us.amazon.nova-lite-v1:0',
          JOB_TIMEOUT_HOURS: '24',
          MIN_RECORDS_PER_JOB: '100',
          MAX_JOB_BYTES: '5000000000',
          MAX_CONCURRENT_JOBS: '10',
          POOL_DEADLINE_SECS: '21600',
          POOL_BELOW_RECORDS: '10000',
          BELOW_MINIMUM_POLICY: 'on_demand',
          ON_DEMAND_CONCURRENCY: '4',
          MAX_RECORD_ATTEMPTS: '3',
        }),
      },
    });
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Environment.Variables.MODEL_PRICES).toBeUndefined();
    }
  });

  it('when context sets the pool and on-demand settings should pass them to every function', () => {
    const prices = {
      'anthropic.claude-3-haiku-20240307-v1:0': { inputPerMtok: 0.25, outputPerMtok: 1.25 },
      'anthropic.claude-3-5-sonnet-20240620-v1:0': { inputPerMtok: 3, outputPerMtok: 15 },
    };
    const { template: t } = synth({
      poolDeadlineSecs: '3600',
      poolBelowRecords: '5000',
      belowMinimumPolicy: 'pad',
      onDemandConcurrency: 8,
      maxRecordAttempts: '5',
      modelPrices: JSON.stringify(prices),
    });
    t.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POOL_DEADLINE_SECS: '3600',
          POOL_BELOW_RECORDS: '5000',
          BELOW_MINIMUM_POLICY: 'pad',
          ON_DEMAND_CONCURRENCY: '8',
          MAX_RECORD_ATTEMPTS: '5',
        }),
      },
    });
    for (const fn of Object.values(resourcesOf(t, 'AWS::Lambda::Function'))) {
      expect(JSON.parse(fn.Properties.Environment.Variables.MODEL_PRICES)).toEqual(prices);
    }
  });

  it('when context overrides settings should change the variables, not the code', () => {
    const { template: t } = synth({
      modelIds: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0,anthropic.claude-3-haiku-20240307-v1:0',
      jobTimeoutHours: '48',
      quotas: JSON.stringify({ ...(synthQuotas()), minRecordsPerJob: 1000 }),
    });
    t.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          ALLOWED_MODEL_IDS: 'us.anthropic.claude-3-5-sonnet-20240620-v1:0,anthropic.claude-3-haiku-20240307-v1:0',
          JOB_TIMEOUT_HOURS: '48',
          MIN_RECORDS_PER_JOB: '1000',
        }),
      },
    });
  });

  it('when logging should use Lambda JSON logging with the configured level instead of an env var', () => {
    template.allResourcesProperties('AWS::Lambda::Function', {
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' },
    });
    for (const fn of Object.values(functions)) {
      expect(Object.keys(fn.Properties.Environment.Variables)).not.toContain('AWS_LAMBDA_LOG_LEVEL');
      expect(Object.keys(fn.Properties.Environment.Variables)).not.toContain('RUST_LOG');
    }
  });
});

function synthQuotas(): Record<string, number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../cdk.json').context.quotas;
}
