/**
 * Every function gets exactly the variables shared/src/config.rs lists in ENV_VARS: the Rust
 * table is the single source of truth, read here from the source file.
 */
import { Match } from 'aws-cdk-lib/assertions';
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

  it('when synthesized should have one Lambda function per crate', () => {
    expect(Object.keys(functions)).toHaveLength(FUNCTIONS.length);
    expect(FUNCTIONS.map((f) => f.name).sort()).toEqual(
      ['intake', 'manifest-builder', 'reconciler', 'status-watcher', 'submitter']);
  });

  it.each(FUNCTIONS.map((f) => f.name))('when %s is synthesized its variables should equal the Rust ENV_VARS exactly', (name) => {
    const id = stack.getLogicalId(stack.functions[name as keyof typeof stack.functions].node.defaultChild as any);
    const vars = functions[id].Properties.Environment.Variables as Record<string, unknown>;
    expect(Object.keys(vars).sort()).toEqual(rust.map((v) => v.name).sort());
    for (const v of rust.filter((r) => r.required)) {
      expect(vars[v.name]).toBeDefined();
      expect(vars[v.name]).not.toEqual('');
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
          ALLOWED_MODEL_IDS: 'anthropic.claude-3-haiku-20240307-v1:0,anthropic.claude-3-5-sonnet-20240620-v1:0',
          JOB_TIMEOUT_HOURS: '24',
          MIN_RECORDS_PER_JOB: '100',
          MAX_JOB_BYTES: String(5 * 1024 ** 3),
          MAX_CONCURRENT_JOBS: '10',
        }),
      },
    });
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
