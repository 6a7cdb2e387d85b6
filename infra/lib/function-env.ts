/**
 * The environment every function gets: exactly the variables `shared/src/config.rs` lists in
 * ENV_VARS (the Rust side reads them once at cold start and fails fast on a missing one).
 * The names appear here once; `test/env-vars.test.ts` checks them against the Rust table.
 *
 * An optional variable the stack has no value for is left unset (the Rust side then uses its
 * default): MODEL_PRICES is set only when the context gives `modelPrices`, MODEL_FAMILIES only
 * when it gives `modelFamilies`, MODEL_QUOTAS only when it gives `modelQuotas`.
 *
 * The log level is not among them: the functions read AWS_LAMBDA_LOG_LEVEL, which Lambda sets
 * from the function's logging config (applicationLogLevelV2).
 */
import type { Settings } from './settings';

/** Variables of ENV_VARS (all optional there) set only when the context configures them. */
export const SET_ONLY_WHEN_CONFIGURED: readonly string[] = [
  'MODEL_PRICES', 'MODEL_FAMILIES', 'MODEL_QUOTAS', 'RESULTS_BY', 'RESULTS_TZ', 'ON_DEMAND_RATES',
];

export interface FunctionEnvInputs {
  readonly intentsTable: string;
  readonly resultsTable: string;
  /** The uploads index (`pk`/`sk`): intake records S3 uploads in it, manifest-builder reads it. */
  readonly uploadsTable: string;
  readonly eventBusName: string;
  readonly uploadsBucket: string;
  readonly manifestsBucket: string;
  readonly outputsBucket: string;
  readonly bedrockRoleArn: string;
  /** Base of `statusUrl`, without a trailing slash. */
  readonly apiBaseUrl: string;
  readonly settings: Settings;
}

export function functionEnvironment(i: FunctionEnvInputs): Record<string, string> {
  const s = i.settings;
  const q = s.quotas;
  return {
    INTENTS_TABLE: i.intentsTable,
    RESULTS_TABLE: i.resultsTable,
    UPLOADS_TABLE: i.uploadsTable,
    EVENT_BUS_NAME: i.eventBusName,
    UPLOADS_BUCKET: i.uploadsBucket,
    MANIFESTS_BUCKET: i.manifestsBucket,
    OUTPUTS_BUCKET: i.outputsBucket,
    BEDROCK_ROLE_ARN: i.bedrockRoleArn,
    ALLOWED_MODEL_IDS: s.modelIds.join(','),
    API_BASE_URL: i.apiBaseUrl,
    MAX_IMAGES_PER_INTENT: String(s.maxImagesPerIntent),
    JOB_TIMEOUT_HOURS: String(s.jobTimeoutHours),
    OUTBOX_GRACE_SECS: String(s.outboxGraceSecs),
    INTENT_TTL_DAYS: String(s.intentTtlDays),
    STUCK_AFTER_SECS: String(s.stuckAfterSecs),
    MAX_OUTPUT_TOKENS: String(s.maxOutputTokens),
    MIN_RECORDS_PER_JOB: String(q.minRecordsPerJob),
    MAX_RECORDS_PER_JOB: String(q.maxRecordsPerJob),
    MAX_RECORDS_PER_FILE: String(q.maxRecordsPerFile),
    MAX_FILE_BYTES: String(q.maxFileBytes),
    MAX_JOB_BYTES: String(q.maxJobBytes),
    MAX_CONCURRENT_JOBS: String(q.maxConcurrentJobs),
    POOL_DEADLINE_SECS: String(s.poolDeadlineSecs),
    POOL_BELOW_RECORDS: String(s.poolBelowRecords),
    BELOW_MINIMUM_POLICY: s.belowMinimumPolicy,
    ON_DEMAND_CONCURRENCY: String(s.onDemandConcurrency),
    MAX_RECORD_ATTEMPTS: String(s.maxRecordAttempts),
    RECEIPT_MAX_AGE_DAYS: String(s.receiptMaxAgeDays),
    DUPLICATE_WINDOW_DAYS: String(s.duplicateWindowDays),
    REASK_POLICY: s.reaskPolicy,
    REMAINDER_POLICY: s.remainderPolicy,
    IMAGE_POLICY: s.imagePolicy,
    CREATE_BACKOFF_SECS: String(s.createBackoffSecs),
    MAX_OPEN_INTENTS_PER_USER: String(s.maxOpenIntentsPerUser),
    MAX_IMAGES_PER_USER_PER_DAY: String(s.maxImagesPerUserPerDay),
    MIN_DEADLINE_SECS: String(s.minDeadlineSecs),
    DEADLINE_MARGIN_SECS: String(s.deadlineMarginSecs),
    ...(s.resultsBy === undefined ? {} : { RESULTS_BY: s.resultsBy }),
    ...(s.resultsTz === undefined ? {} : { RESULTS_TZ: s.resultsTz }),
    ...(s.onDemandRates === undefined ? {} : { ON_DEMAND_RATES: JSON.stringify(s.onDemandRates) }),
    ...(s.modelQuotas === undefined ? {} : { MODEL_QUOTAS: JSON.stringify(s.modelQuotas) }),
    ...(s.modelPrices === undefined ? {} : { MODEL_PRICES: JSON.stringify(s.modelPrices) }),
    ...(s.modelFamilies === undefined ? {} : {
      MODEL_FAMILIES: JSON.stringify(Object.fromEntries(
        Object.entries(s.modelFamilies).map(([arn, m]) => [arn, m.family]),
      )),
    }),
  };
}
