/**
 * Deployment settings, read from CDK context (cdk.json, or `-c key=value` on the command line)
 * and checked once, here, before any construct is made. A bad value stops the synth with a
 * message naming its context key.
 */

/** Bedrock quotas, per model and region: check yours in Service Quotas before raising them. */
export interface Quotas {
  readonly minRecordsPerJob: number;
  readonly maxRecordsPerJob: number;
  readonly maxRecordsPerFile: number;
  readonly maxFileBytes: number;
  readonly maxJobBytes: number;
  readonly maxConcurrentJobs: number;
}

export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';

/** What a pool below the job minimum does at its deadline (the Rust `BelowMinimum`). */
export type BelowMinimumPolicy = 'wait' | 'pad' | 'on_demand';
export type RemainderPolicy = 'batch' | 'on_demand';
/** How much of a photo the model is given (the Rust `normalize::Policy`). */
export type ImagePolicy = 'economy' | 'whole';

/** The record families the Rust side builds (`shared/src/domain/family/`). */
export const FAMILIES = ['claude', 'nova'] as const;
export type Family = (typeof FAMILIES)[number];

/**
 * A model whose id does not name its model: an application inference profile ARN. The family
 * builds its records (MODEL_FAMILIES); the foundation model is what IAM must also allow.
 */
export interface ConfiguredModel {
  readonly family: Family;
  readonly foundationModel: string;
}

/** On-demand USD prices of a model per million tokens (the Rust `ModelPrice`, camelCase). */
export interface ModelPrice {
  readonly inputPerMtok: number;
  readonly outputPerMtok: number;
}

export interface Settings {
  /** Deployment stage: part of the stack name and of the physical names (`batch-orchestrator-{stage}-…`). */
  readonly stage: string;
  /** Bedrock model ids (or inference-profile ids) clients may ask for; the first is the default. */
  readonly modelIds: readonly string[];
  /** Issuer (`iss`) the HTTP API's JWT authorizer accepts, e.g. a Cognito user pool URL. */
  readonly jwtIssuer: string;
  /** Audiences (`aud` / `client_id`) the JWT authorizer accepts. */
  readonly jwtAudience: readonly string[];
  readonly quotas: Quotas;
  /** Steady-state requests per second of the API's default stage. */
  readonly apiThrottleRate: number;
  /** Burst of the API's default stage. */
  readonly apiThrottleBurst: number;
  /** `timeoutDurationInHours` of each Bedrock job (Bedrock accepts 24 to 168). */
  readonly jobTimeoutHours: number;
  readonly maxImagesPerIntent: number;
  readonly outboxGraceSecs: number;
  /** Seconds before the reconciler re-announces an intent stuck before submission. */
  readonly stuckAfterSecs: number;
  /** Minutes between the reconciler's scheduled passes (EventBridge rate, 1 to 1440). */
  readonly reconcileEveryMinutes: number;
  /**
   * When the nightly run fires (EventBridge schedule expression, UTC): it makes one intent per
   * user with uploads on the previous UTC day. Default `cron(30 0 * * ? *)` (00:30 UTC).
   */
  readonly nightlyCron: string;
  /** Whether the nightly schedule exists at all (default true). */
  readonly nightlyEnabled: boolean;
  readonly intentTtlDays: number;
  readonly maxOutputTokens: number;
  /** Seconds a below-minimum intent waits in its pool before `belowMinimumPolicy` applies. */
  readonly poolDeadlineSecs: number;
  /** Intents with fewer records are pooled into shared jobs; 0 = the job minimum. */
  readonly poolBelowRecords: number;
  /** At the pool deadline: keep waiting, pad the job up to the minimum, or run it on-demand. */
  readonly belowMinimumPolicy: BelowMinimumPolicy;
  /** On-demand InvokeModel calls in flight at once (the on_demand policy and record re-runs). */
  readonly onDemandConcurrency: number;
  /** Attempts per record, the batch job's included; retryable failures are re-run up to it. */
  readonly maxRecordAttempts: number;
  /** Days before its upload a receipt's date may be (the `date` check). */
  readonly receiptMaxAgeDays: number;
  /** Days a photo's normalized content answers the same user's copies of it (0: never). */
  readonly duplicateWindowDays: number;
  /** How a flagged answer is asked again: off, whole or model:<id>. */
  readonly reaskPolicy: string;
  /** Where a job's unanswered records are re-run when there are at least the minimum of them. */
  readonly remainderPolicy: RemainderPolicy;
  /** The receipt alone, cropped, grey, sized by its print (economy), or the whole photo. */
  readonly imagePolicy: ImagePolicy;
  /** First wait after Bedrock answers a create "not now" (quota, throttling); doubles, to an hour. */
  readonly createBackoffSecs: number;
  /** Batches one user may have in progress at once (over it: 429). */
  readonly maxOpenIntentsPerUser: number;
  /** Images one user may request per UTC day (over it: 429 until midnight UTC). */
  readonly maxImagesPerUserPerDay: number;
  /** A request's deadline must be at least this many seconds ahead. */
  readonly minDeadlineSecs: number;
  /** Seconds kept in hand before a deadline when a late job is stopped (cover the reconciler's period). */
  readonly deadlineMarginSecs: number;
  /** The nightly run's deadline, a local time HH:MM in `resultsTz`; absent: no deadline. */
  readonly resultsBy?: string;
  /** The IANA time zone of `resultsBy` (the Rust side checks it against the tz database). */
  readonly resultsTz?: string;
  /** On-demand rates per model the deadline planner may use; absent: the Rust default. */
  readonly onDemandRates?: Readonly<Record<string, OnDemandRate>>;
  /**
   * Quotas of single models over `quotas` (model id or foundation id -> some quota keys).
   * Optional: when absent MODEL_QUOTAS is left unset.
   */
  readonly modelQuotas?: Readonly<Record<string, Partial<Quotas>>>;
  /**
   * On-demand prices per model id, for cost estimates. Optional: when absent MODEL_PRICES is
   * left unset and the functions use the Rust defaults; when set it replaces them entirely.
   */
  readonly modelPrices?: Readonly<Record<string, ModelPrice>>;
  /**
   * Application inference profiles among `modelIds`: ARN -> {family, foundationModel}.
   * Optional: when absent MODEL_FAMILIES is left unset.
   */
  readonly modelFamilies?: Readonly<Record<string, ConfiguredModel>>;
  /** Application log level of the functions (Lambda's advanced logging controls). */
  readonly logLevel: LogLevel;
  /** Build the Rust functions with cargo-lambda (needed to deploy); false synthesizes without building. */
  readonly bundle: boolean;
  /** Optional SNS topic ARN the alarms notify. */
  readonly alarmTopicArn?: string;
}

/** Every context key this app reads, so the README and the tests can list them. */
export const CONTEXT_KEYS = [
  'stage',
  'modelIds',
  'jwtIssuer',
  'jwtAudience',
  'quotas',
  'apiThrottleRate',
  'apiThrottleBurst',
  'jobTimeoutHours',
  'maxImagesPerIntent',
  'outboxGraceSecs',
  'stuckAfterSecs',
  'reconcileEveryMinutes',
  'nightlyCron',
  'nightlyEnabled',
  'intentTtlDays',
  'maxOutputTokens',
  'poolDeadlineSecs',
  'poolBelowRecords',
  'belowMinimumPolicy',
  'onDemandConcurrency',
  'maxRecordAttempts',
  'receiptMaxAgeDays',
  'duplicateWindowDays',
  'reaskPolicy',
  'remainderPolicy',
  'imagePolicy',
  'createBackoffSecs',
  'maxOpenIntentsPerUser',
  'maxImagesPerUserPerDay',
  'minDeadlineSecs',
  'deadlineMarginSecs',
  'resultsBy',
  'resultsTz',
  'onDemandRates',
  'modelQuotas',
  'modelPrices',
  'modelFamilies',
  'logLevel',
  'bundle',
  'alarmTopicArn',
] as const;

export type ContextKey = (typeof CONTEXT_KEYS)[number];

const QUOTA_KEYS: readonly (keyof Quotas)[] = [
  'minRecordsPerJob',
  'maxRecordsPerJob',
  'maxRecordsPerFile',
  'maxFileBytes',
  'maxJobBytes',
  'maxConcurrentJobs',
];

/** The reconciler's period when the context does not set one. */
export const DEFAULT_RECONCILE_EVERY_MINUTES = 5;

/** The nightly run's schedule when the context does not set one: 00:30 UTC every day. */
export const DEFAULT_NIGHTLY_CRON = 'cron(30 0 * * ? *)';

/**
 * Defaults of the pool and on-demand settings when the context does not set them: the Rust
 * `Settings::local` values (a test compares them), passed to the functions all the same.
 */
export const DEFAULT_POOL_DEADLINE_SECS = 6 * 3600;
export const DEFAULT_POOL_BELOW_RECORDS = 10000;
export const DEFAULT_BELOW_MINIMUM_POLICY: BelowMinimumPolicy = 'on_demand';
export const DEFAULT_ON_DEMAND_CONCURRENCY = 4;
export const DEFAULT_MAX_RECORD_ATTEMPTS = 3;
export const DEFAULT_RECEIPT_MAX_AGE_DAYS = 365;
export const DEFAULT_DUPLICATE_WINDOW_DAYS = 30;
export const DEFAULT_REASK_POLICY = 'whole';

/** The values the Rust `BelowMinimum::from_str` accepts. */
export const BELOW_MINIMUM_POLICIES: readonly BelowMinimumPolicy[] = ['wait', 'pad', 'on_demand'];
export const DEFAULT_REMAINDER_POLICY: RemainderPolicy = 'batch';
export const REMAINDER_POLICIES: readonly RemainderPolicy[] = ['batch', 'on_demand'];
/** The values the Rust `Policy::from_str` accepts; economy is its default. */
export const DEFAULT_IMAGE_POLICY: ImagePolicy = 'economy';
export const IMAGE_POLICIES: readonly ImagePolicy[] = ['economy', 'whole'];
export const DEFAULT_CREATE_BACKOFF_SECS = 60;
export const DEFAULT_MAX_OPEN_INTENTS_PER_USER = 20;
export const DEFAULT_MAX_IMAGES_PER_USER_PER_DAY = 200000;
export const DEFAULT_MIN_DEADLINE_SECS = 900;
export const DEFAULT_DEADLINE_MARGIN_SECS = 600;

/** One model's on-demand rate (Bedrock's per-model requests and tokens per minute, or a share). */
export interface OnDemandRate {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

const MODEL_PRICE_KEYS: readonly (keyof ModelPrice)[] = ['inputPerMtok', 'outputPerMtok'];

const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

/** The same grammar as the Rust `ModelId::parse`: 1-256 of `[A-Za-z0-9._:/-]`. */
const MODEL_ID = /^[A-Za-z0-9._:/-]{1,256}$/;

/** Stage names end up in queue, table and bus names: keep them short and lowercase. */
const STAGE = /^[a-z][a-z0-9-]{0,19}$/;

export class SettingsError extends Error {
  constructor(key: string, problem: string) {
    super(`context "${key}": ${problem}`);
    this.name = 'SettingsError';
  }
}

/** A context key whose value must be one of `allowed` (case-insensitive); `fallback` when absent. */
function oneOf<T extends string>(read: ContextReader, key: ContextKey, allowed: readonly T[], fallback: T): T {
  if (!present(read(key))) return fallback;
  const value = str(read, key).toLowerCase() as T;
  if (!allowed.includes(value)) {
    throw new SettingsError(key, `must be one of ${allowed.join(', ')}`);
  }
  return value;
}

/** Reads a context value; `-c key=value` always arrives as a string, cdk.json as JSON. */
export type ContextReader = (key: ContextKey) => unknown;

function present(v: unknown): boolean {
  return v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '');
}

function str(read: ContextReader, key: ContextKey): string {
  const v = read(key);
  if (!present(v) || typeof v !== 'string') {
    throw new SettingsError(key, 'is required and must be a non-empty string');
  }
  return v.trim();
}

/** A list from a JSON array (cdk.json) or a comma-separated string (`-c key=a,b`). */
function list(read: ContextReader, key: ContextKey): string[] {
  const v = read(key);
  let items: unknown[];
  if (Array.isArray(v)) {
    items = v;
  } else if (typeof v === 'string') {
    const s = v.trim();
    items = s.startsWith('[') ? parseJson(key, s) : s.split(',');
  } else {
    throw new SettingsError(key, 'is required: a list (JSON array or comma-separated string)');
  }
  const out = items.map((i) => {
    if (typeof i !== 'string') throw new SettingsError(key, `every item must be a string, got ${JSON.stringify(i)}`);
    return i.trim();
  }).filter((i) => i !== '');
  if (out.length === 0) throw new SettingsError(key, 'must name at least one value');
  if (new Set(out).size !== out.length) throw new SettingsError(key, 'must not repeat a value');
  return out;
}

function parseJson<T>(key: string, s: string): T {
  try {
    return JSON.parse(s) as T;
  } catch {
    throw new SettingsError(key, `is not valid JSON: ${s}`);
  }
}

function int(key: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new SettingsError(key, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function bool(key: string, v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && ['true', 'false'].includes(v.trim().toLowerCase())) {
    return v.trim().toLowerCase() === 'true';
  }
  throw new SettingsError(key, `must be true or false, got ${JSON.stringify(v)}`);
}

/** An optional boolean setting: its default when the context does not set it. */
function optionalBool(read: ContextReader, key: ContextKey, fallback: boolean): boolean {
  return present(read(key)) ? bool(key, read(key)) : fallback;
}

/**
 * An EventBridge schedule expression, `cron(…)` or `rate(…)`: the shape is checked here (so a
 * typo stops the synth naming the key), the fields by EventBridge at deploy.
 */
function scheduleExpression(read: ContextReader, key: ContextKey, fallback: string): string {
  if (!present(read(key))) return fallback;
  const v = read(key);
  if (typeof v !== 'string') throw new SettingsError(key, `must be a string cron(…) or rate(…), got ${JSON.stringify(v)}`);
  const expr = v.trim();
  if (!/^(cron|rate)\(.*\S.*\)$/.test(expr)) {
    throw new SettingsError(key, `must be an EventBridge schedule expression, cron(…) or rate(…), got ${JSON.stringify(v)}`);
  }
  return expr;
}

function quotas(read: ContextReader): Quotas {
  let raw = read('quotas');
  if (typeof raw === 'string') raw = parseJson('quotas', raw);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SettingsError('quotas', `must be an object with ${QUOTA_KEYS.join(', ')}`);
  }
  const obj = raw as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !(QUOTA_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new SettingsError('quotas', `unknown keys ${unknown.join(', ')}`);
  const q = Object.fromEntries(
    QUOTA_KEYS.map((k) => {
      if (!present(obj[k])) throw new SettingsError(`quotas.${k}`, 'is required');
      return [k, int(`quotas.${k}`, obj[k], 1)];
    }),
  ) as unknown as Quotas;
  if (q.minRecordsPerJob > q.maxRecordsPerJob) {
    throw new SettingsError('quotas', 'minRecordsPerJob must not exceed maxRecordsPerJob');
  }
  if (q.maxFileBytes > q.maxJobBytes) {
    throw new SettingsError('quotas', 'maxFileBytes must not exceed maxJobBytes');
  }
  return q;
}

/** An optional integer setting: its default when the context does not set it. */
/** `reaskPolicy`: off, whole or model:<id> (the Rust config refuses anything else). */
function reaskPolicy(read: ContextReader): string {
  if (!present(read('reaskPolicy'))) return DEFAULT_REASK_POLICY;
  const v = str(read, 'reaskPolicy');
  if (!/^(off|whole|model:[A-Za-z0-9:._\/-]+)$/.test(v)) {
    throw new SettingsError('reaskPolicy', 'must be off, whole or model:<id>');
  }
  return v;
}

function optionalInt(read: ContextReader, key: ContextKey, fallback: number, min: number, max?: number): number {
  return present(read(key)) ? int(key, read(key), min, max) : fallback;
}

/** `resultsBy`: a local time `HH:MM`, as the Rust config reads RESULTS_BY. */
function resultsBy(read: ContextReader): string | undefined {
  if (!present(read('resultsBy'))) return undefined;
  const v = str(read, 'resultsBy');
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(v)) throw new SettingsError('resultsBy', 'must be a local time HH:MM');
  return v;
}

/** `onDemandRates`: `{modelId: {requestsPerMinute, tokensPerMinute}}`, positive numbers. */
function onDemandRates(read: ContextReader): Record<string, OnDemandRate> | undefined {
  let raw = read('onDemandRates');
  if (!present(raw)) return undefined;
  if (typeof raw === 'string') raw = parseJson('onDemandRates', raw.trim());
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SettingsError('onDemandRates', 'must be an object {modelId: {requestsPerMinute, tokensPerMinute}}');
  }
  const out: Record<string, OnDemandRate> = {};
  for (const [model, rate] of Object.entries(raw as Record<string, unknown>)) {
    if (!MODEL_ID.test(model)) throw new SettingsError('onDemandRates', `${JSON.stringify(model)} is not a model id`);
    const r = rate as Record<string, unknown>;
    for (const k of ['requestsPerMinute', 'tokensPerMinute']) {
      if (typeof r?.[k] !== 'number' || !((r[k] as number) > 0)) {
        throw new SettingsError(`onDemandRates.${model}.${k}`, 'must be a number above 0');
      }
    }
    out[model] = { requestsPerMinute: r.requestsPerMinute as number, tokensPerMinute: r.tokensPerMinute as number };
  }
  return out;
}

/**
 * `modelQuotas` (`-c modelQuotas='{"amazon.nova-pro-v1:0": {"minRecordsPerJob": 1000}}'`): each
 * model's quota keys over `quotas`; undefined when the context does not set it.
 */
function modelQuotas(read: ContextReader): Record<string, Partial<Quotas>> | undefined {
  let raw = read('modelQuotas');
  if (!present(raw)) return undefined;
  if (typeof raw === 'string') raw = parseJson('modelQuotas', raw.trim());
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SettingsError('modelQuotas', 'must be an object {modelId: {minRecordsPerJob, …}}');
  }
  const out: Record<string, Partial<Quotas>> = {};
  for (const [model, q] of Object.entries(raw as Record<string, unknown>)) {
    if (!MODEL_ID.test(model)) throw new SettingsError('modelQuotas', `${JSON.stringify(model)} is not a model id`);
    if (typeof q !== 'object' || q === null || Array.isArray(q)) {
      throw new SettingsError('modelQuotas', `${model}: must be an object of quota keys`);
    }
    const one: Partial<Record<keyof Quotas, number>> = {};
    for (const [key, v] of Object.entries(q as Record<string, unknown>)) {
      if (!(QUOTA_KEYS as readonly string[]).includes(key)) {
        throw new SettingsError('modelQuotas', `${model}: unknown quota ${key}; quotas are ${QUOTA_KEYS.join(', ')}`);
      }
      one[key as keyof Quotas] = int(`modelQuotas.${model}.${key}`, v, 1);
    }
    out[model] = one;
  }
  return out;
}

/**
 * `{modelId: {inputPerMtok, outputPerMtok}}` from a JSON object (cdk.json) or a JSON string
 * (`-c modelPrices='{…}'`); undefined when the context does not set it.
 */
function modelPrices(read: ContextReader): Record<string, ModelPrice> | undefined {
  let raw = read('modelPrices');
  if (!present(raw)) return undefined;
  if (typeof raw === 'string') raw = parseJson('modelPrices', raw.trim());
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SettingsError('modelPrices', 'must be an object {modelId: {inputPerMtok, outputPerMtok}}');
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) throw new SettingsError('modelPrices', 'must price at least one model (or be left out)');
  return Object.fromEntries(entries.map(([model, price]) => {
    const key = `modelPrices.${model}`;
    if (!MODEL_ID.test(model)) throw new SettingsError('modelPrices', `${JSON.stringify(model)} is not a model id`);
    if (typeof price !== 'object' || price === null || Array.isArray(price)) {
      throw new SettingsError(key, `must be an object with ${MODEL_PRICE_KEYS.join(', ')}`);
    }
    const obj = price as Record<string, unknown>;
    const unknown = Object.keys(obj).filter((k) => !(MODEL_PRICE_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) throw new SettingsError(key, `unknown keys ${unknown.join(', ')}`);
    const p = Object.fromEntries(MODEL_PRICE_KEYS.map((k) => {
      // JSON numbers only: the Rust side reads them as f64 and refuses a quoted number.
      if (typeof obj[k] !== 'number' || !Number.isFinite(obj[k]) || (obj[k] as number) < 0) {
        throw new SettingsError(`${key}.${k}`, `must be a number of USD per million tokens, 0 or more, got ${JSON.stringify(obj[k])}`);
      }
      return [k, obj[k]];
    })) as unknown as ModelPrice;
    return [model, p];
  }));
}

/** `{applicationProfileArn: {family, foundationModel}}`; undefined when not set. */
function modelFamilies(read: ContextReader): Record<string, ConfiguredModel> | undefined {
  let raw = read('modelFamilies');
  if (!present(raw)) return undefined;
  if (typeof raw === 'string') raw = parseJson('modelFamilies', raw.trim());
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SettingsError('modelFamilies', 'must be an object {applicationProfileArn: {family, foundationModel}}');
  }
  return Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([arn, v]) => {
    const key = `modelFamilies.${arn}`;
    const o = (v ?? {}) as Record<string, unknown>;
    if (!/^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:application-inference-profile\/[a-z0-9]+$/.test(arn)) {
      throw new SettingsError('modelFamilies', `${JSON.stringify(arn)} is not an application inference profile ARN`);
    }
    if (!(FAMILIES as readonly unknown[]).includes(o.family)) {
      throw new SettingsError(`${key}.family`, `must be one of ${FAMILIES.join(', ')}`);
    }
    if (typeof o.foundationModel !== 'string' || !MODEL_ID.test(o.foundationModel) || o.foundationModel.includes(':inference')) {
      throw new SettingsError(`${key}.foundationModel`, 'must be the foundation model id the profile routes to');
    }
    return [arn, { family: o.family as Family, foundationModel: o.foundationModel }];
  }));
}

/** Placeholder values cdk.json ships with: fine for a synth, never for a deploy. */
const PLACEHOLDER = /example/i;

/**
 * A bundled synth (`-c bundle=true`, what `npm run deploy` does) must not deploy the shipped
 * placeholders: a JWT issuer and audience nobody's tokens carry, and alarms that notify no
 * one. Throws naming every key still to set.
 */
export function checkDeployable(s: Settings): void {
  const missing: string[] = [];
  if (PLACEHOLDER.test(s.jwtIssuer)) missing.push('jwtIssuer (your token issuer, e.g. a Cognito user pool URL)');
  if (s.jwtAudience.length === 0 || s.jwtAudience.some((a) => PLACEHOLDER.test(a))) {
    missing.push('jwtAudience (your app client ids)');
  }
  if (s.alarmTopicArn === undefined) missing.push('alarmTopicArn (the SNS topic the 9 alarms notify)');
  if (missing.length > 0) {
    throw new SettingsError(
      missing[0].split(' ')[0],
      `a bundled (deployable) synth needs real values; set with -c key=value or in cdk.json: ${missing.join('; ')}`,
    );
  }
}

/** Builds and checks the settings; throws `SettingsError` naming the first bad key. */
export function readSettings(read: ContextReader): Settings {
  const stage = str(read, 'stage');
  if (!STAGE.test(stage)) {
    throw new SettingsError('stage', 'must be 1-20 of lowercase letters, digits and "-", starting with a letter');
  }
  const modelIds = list(read, 'modelIds');
  for (const m of modelIds) {
    if (!MODEL_ID.test(m)) throw new SettingsError('modelIds', `${JSON.stringify(m)} is not a model id`);
  }
  const jwtIssuer = str(read, 'jwtIssuer');
  if (!jwtIssuer.startsWith('https://')) {
    throw new SettingsError('jwtIssuer', 'must be an https:// URL (the token issuer, `iss`)');
  }
  const logLevel = (present(read('logLevel')) ? str(read, 'logLevel').toUpperCase() : 'INFO') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new SettingsError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const alarmTopicArn = present(read('alarmTopicArn')) ? str(read, 'alarmTopicArn') : undefined;
  if (alarmTopicArn !== undefined && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/.test(alarmTopicArn)) {
    throw new SettingsError('alarmTopicArn', 'must be an SNS topic ARN');
  }
  const settings: Settings = {
    stage,
    modelIds,
    jwtIssuer,
    jwtAudience: list(read, 'jwtAudience'),
    quotas: quotas(read),
    apiThrottleRate: int('apiThrottleRate', read('apiThrottleRate'), 1),
    apiThrottleBurst: int('apiThrottleBurst', read('apiThrottleBurst'), 1, 5000),
    // Bedrock's own bounds for timeoutDurationInHours; the Rust config refuses the same.
    jobTimeoutHours: int('jobTimeoutHours', read('jobTimeoutHours'), 24, 168),
    maxImagesPerIntent: int('maxImagesPerIntent', read('maxImagesPerIntent'), 1),
    outboxGraceSecs: int('outboxGraceSecs', read('outboxGraceSecs'), 1),
    stuckAfterSecs: int('stuckAfterSecs', read('stuckAfterSecs'), 1),
    // An EventBridge rate of whole minutes; at most a day apart, or stuck intents wait too long.
    reconcileEveryMinutes: present(read('reconcileEveryMinutes'))
      ? int('reconcileEveryMinutes', read('reconcileEveryMinutes'), 1, 1440)
      : DEFAULT_RECONCILE_EVERY_MINUTES,
    nightlyCron: scheduleExpression(read, 'nightlyCron', DEFAULT_NIGHTLY_CRON),
    nightlyEnabled: optionalBool(read, 'nightlyEnabled', true),
    intentTtlDays: int('intentTtlDays', read('intentTtlDays'), 1),
    maxOutputTokens: int('maxOutputTokens', read('maxOutputTokens'), 1),
    poolDeadlineSecs: optionalInt(read, 'poolDeadlineSecs', DEFAULT_POOL_DEADLINE_SECS, 1),
    poolBelowRecords: optionalInt(read, 'poolBelowRecords', DEFAULT_POOL_BELOW_RECORDS, 0),
    belowMinimumPolicy: oneOf(read, 'belowMinimumPolicy', BELOW_MINIMUM_POLICIES, DEFAULT_BELOW_MINIMUM_POLICY),
    onDemandConcurrency: optionalInt(read, 'onDemandConcurrency', DEFAULT_ON_DEMAND_CONCURRENCY, 1),
    maxRecordAttempts: optionalInt(read, 'maxRecordAttempts', DEFAULT_MAX_RECORD_ATTEMPTS, 1),
    receiptMaxAgeDays: optionalInt(read, 'receiptMaxAgeDays', DEFAULT_RECEIPT_MAX_AGE_DAYS, 0),
    duplicateWindowDays: optionalInt(read, 'duplicateWindowDays', DEFAULT_DUPLICATE_WINDOW_DAYS, 0),
    reaskPolicy: reaskPolicy(read),
    remainderPolicy: oneOf(read, 'remainderPolicy', REMAINDER_POLICIES, DEFAULT_REMAINDER_POLICY),
    imagePolicy: oneOf(read, 'imagePolicy', IMAGE_POLICIES, DEFAULT_IMAGE_POLICY),
    createBackoffSecs: optionalInt(read, 'createBackoffSecs', DEFAULT_CREATE_BACKOFF_SECS, 0),
    maxOpenIntentsPerUser: optionalInt(read, 'maxOpenIntentsPerUser', DEFAULT_MAX_OPEN_INTENTS_PER_USER, 1),
    maxImagesPerUserPerDay: optionalInt(read, 'maxImagesPerUserPerDay', DEFAULT_MAX_IMAGES_PER_USER_PER_DAY, 1),
    minDeadlineSecs: optionalInt(read, 'minDeadlineSecs', DEFAULT_MIN_DEADLINE_SECS, 0),
    deadlineMarginSecs: optionalInt(read, 'deadlineMarginSecs', DEFAULT_DEADLINE_MARGIN_SECS, 0),
    resultsBy: resultsBy(read),
    resultsTz: present(read('resultsTz')) ? str(read, 'resultsTz') : undefined,
    onDemandRates: onDemandRates(read),
    modelQuotas: modelQuotas(read),
    modelPrices: modelPrices(read),
    modelFamilies: modelFamilies(read),
    logLevel,
    bundle: bool('bundle', read('bundle')),
    alarmTopicArn,
  };
  if (settings.bundle) checkDeployable(settings);
  return settings;
}
