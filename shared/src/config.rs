//! Typed configuration of the Lambda functions, read once from the environment at cold start.
//! Every variable name appears here once; `ENV_VARS` lists them for the infrastructure (a test
//! in `infra/` checks the stack sets exactly these). A missing or malformed value stops the
//! function at start-up with a message naming the variable.

use crate::domain::ids::{BucketName, ModelId};
use crate::domain::normalize::Policy;
use crate::domain::settings::{Quotas, Settings};
use std::collections::{BTreeMap, HashMap};

pub const INTENTS_TABLE: &str = "INTENTS_TABLE";
pub const RESULTS_TABLE: &str = "RESULTS_TABLE";
pub const UPLOADS_TABLE: &str = "UPLOADS_TABLE";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const UPLOADS_BUCKET: &str = "UPLOADS_BUCKET";
pub const MANIFESTS_BUCKET: &str = "MANIFESTS_BUCKET";
pub const OUTPUTS_BUCKET: &str = "OUTPUTS_BUCKET";
pub const BEDROCK_ROLE_ARN: &str = "BEDROCK_ROLE_ARN";
pub const ALLOWED_MODEL_IDS: &str = "ALLOWED_MODEL_IDS";
pub const API_BASE_URL: &str = "API_BASE_URL";
pub const MAX_IMAGES_PER_INTENT: &str = "MAX_IMAGES_PER_INTENT";
pub const JOB_TIMEOUT_HOURS: &str = "JOB_TIMEOUT_HOURS";
pub const OUTBOX_GRACE_SECS: &str = "OUTBOX_GRACE_SECS";
pub const INTENT_TTL_DAYS: &str = "INTENT_TTL_DAYS";
pub const STUCK_AFTER_SECS: &str = "STUCK_AFTER_SECS";
pub const MAX_OUTPUT_TOKENS: &str = "MAX_OUTPUT_TOKENS";
pub const MIN_RECORDS_PER_JOB: &str = "MIN_RECORDS_PER_JOB";
pub const MAX_RECORDS_PER_JOB: &str = "MAX_RECORDS_PER_JOB";
pub const MAX_RECORDS_PER_FILE: &str = "MAX_RECORDS_PER_FILE";
pub const MAX_FILE_BYTES: &str = "MAX_FILE_BYTES";
pub const MAX_JOB_BYTES: &str = "MAX_JOB_BYTES";
pub const MAX_CONCURRENT_JOBS: &str = "MAX_CONCURRENT_JOBS";
pub const POOL_DEADLINE_SECS: &str = "POOL_DEADLINE_SECS";
pub const POOL_BELOW_RECORDS: &str = "POOL_BELOW_RECORDS";
pub const BELOW_MINIMUM_POLICY: &str = "BELOW_MINIMUM_POLICY";
pub const ON_DEMAND_CONCURRENCY: &str = "ON_DEMAND_CONCURRENCY";
pub const MAX_RECORD_ATTEMPTS: &str = "MAX_RECORD_ATTEMPTS";
pub const RECEIPT_MAX_AGE_DAYS: &str = "RECEIPT_MAX_AGE_DAYS";
pub const DUPLICATE_WINDOW_DAYS: &str = "DUPLICATE_WINDOW_DAYS";
pub const REASK_POLICY: &str = "REASK_POLICY";
pub const MODEL_PRICES: &str = "MODEL_PRICES";
pub const MODEL_FAMILIES: &str = "MODEL_FAMILIES";
pub const MODEL_QUOTAS: &str = "MODEL_QUOTAS";
pub const CREATE_BACKOFF_SECS: &str = "CREATE_BACKOFF_SECS";
pub const REMAINDER_POLICY: &str = "REMAINDER_POLICY";
pub const MAX_OPEN_INTENTS_PER_USER: &str = "MAX_OPEN_INTENTS_PER_USER";
pub const MAX_IMAGES_PER_USER_PER_DAY: &str = "MAX_IMAGES_PER_USER_PER_DAY";
pub const MIN_DEADLINE_SECS: &str = "MIN_DEADLINE_SECS";
pub const RESULTS_BY: &str = "RESULTS_BY";
pub const RESULTS_TZ: &str = "RESULTS_TZ";
pub const DEADLINE_MARGIN_SECS: &str = "DEADLINE_MARGIN_SECS";
pub const ON_DEMAND_RATES: &str = "ON_DEMAND_RATES";
pub const IMAGE_POLICY: &str = "IMAGE_POLICY";

/// (name, required, meaning) of every variable the functions read.
pub const ENV_VARS: &[(&str, bool, &str)] = &[
    (
        MIN_DEADLINE_SECS,
        false,
        "a request's deadline must be at least this many seconds ahead (default 900)",
    ),
    (
        RESULTS_BY,
        false,
        "the nightly run's deadline, a local time HH:MM in RESULTS_TZ (default none: no deadline)",
    ),
    (
        RESULTS_TZ,
        false,
        "IANA time zone of RESULTS_BY (default UTC)",
    ),
    (
        DEADLINE_MARGIN_SECS,
        false,
        "seconds kept in hand before a deadline when stopping a late job (default 600)",
    ),
    (
        ON_DEMAND_RATES,
        false,
        "JSON {modelId: {requestsPerMinute, tokensPerMinute}} on-demand rates the deadline planner may use (default 100 and 200000 for every model)",
    ),
    (
        POOL_DEADLINE_SECS,
        false,
        "seconds a below-minimum intent waits in its pool before the policy applies (default 21600)",
    ),
    (
        POOL_BELOW_RECORDS,
        false,
        "intents with fewer records are pooled into shared jobs; 0 = the job minimum (default 0)",
    ),
    (
        BELOW_MINIMUM_POLICY,
        false,
        "what a pool below the minimum does at its deadline: wait, pad or on_demand (default on_demand)",
    ),
    (
        ON_DEMAND_CONCURRENCY,
        false,
        "on-demand InvokeModel calls in flight at once (default 4)",
    ),
    (
        MAX_RECORD_ATTEMPTS,
        false,
        "attempts per record, the batch job's included; retryable failures re-run up to it (default 3)",
    ),
    (
        REASK_POLICY,
        false,
        "how an answer that failed a receipt check is asked again, once, on-demand: off, whole (the whole photo at full size instead of the economy crop) or model:<id> (a stronger model) (default whole)",
    ),
    (
        RECEIPT_MAX_AGE_DAYS,
        false,
        "days before its upload a receipt's date may be; an older (or later) date fails the `date` check (default 365)",
    ),
    (
        DUPLICATE_WINDOW_DAYS,
        false,
        "days a photo's normalized content answers the same user's copies of it without a model call (0: never) (default 30)",
    ),
    (
        MODEL_FAMILIES,
        false,
        "JSON {modelIdOrArn: family} for models whose id does not name their family (application inference profiles): claude or nova",
    ),
    (
        MODEL_PRICES,
        false,
        "JSON {modelId: {inputPerMtok, outputPerMtok}} on-demand USD prices for estimates (defaults in settings.rs)",
    ),
    (
        INTENTS_TABLE,
        true,
        "DynamoDB table of intents (PK intentId)",
    ),
    (
        RESULTS_TABLE,
        true,
        "DynamoDB table of per-image results (PK intentId, SK recordId)",
    ),
    (
        UPLOADS_TABLE,
        true,
        "DynamoDB table of the uploads index (PK pk, SK sk)",
    ),
    (EVENT_BUS_NAME, true, "EventBridge bus for BATCH_* events"),
    (
        UPLOADS_BUCKET,
        true,
        "bucket the receipt images are uploaded to",
    ),
    (
        MANIFESTS_BUCKET,
        true,
        "bucket for JSONL manifests (Bedrock reads it)",
    ),
    (OUTPUTS_BUCKET, true, "bucket Bedrock writes outputs to"),
    (
        BEDROCK_ROLE_ARN,
        true,
        "service role Bedrock batch jobs run under",
    ),
    (
        ALLOWED_MODEL_IDS,
        true,
        "comma-separated model ids clients may ask for; the first is the default",
    ),
    (
        API_BASE_URL,
        true,
        "base of statusUrl, e.g. https://api.example.com",
    ),
    (
        MAX_IMAGES_PER_INTENT,
        false,
        "images per request (default 1000; the intent item must stay under DynamoDB's 400 KB)",
    ),
    (
        JOB_TIMEOUT_HOURS,
        false,
        "timeoutDurationInHours, 24-168 (default 24)",
    ),
    (
        OUTBOX_GRACE_SECS,
        false,
        "seconds before an owed event is taken over (default 30)",
    ),
    (
        INTENT_TTL_DAYS,
        false,
        "days before a stored intent expires (default 30)",
    ),
    (
        STUCK_AFTER_SECS,
        false,
        "seconds before the reconciler re-announces an intent stuck before submission (default 900)",
    ),
    (
        MAX_OUTPUT_TOKENS,
        false,
        "max_tokens of each model request (default 1024)",
    ),
    (
        MIN_RECORDS_PER_JOB,
        false,
        "Bedrock quota: minimum records per job (default 100)",
    ),
    (
        MAX_RECORDS_PER_JOB,
        false,
        "Bedrock quota: records per job (default 50000)",
    ),
    (
        MAX_RECORDS_PER_FILE,
        false,
        "Bedrock quota: records per input file (default 50000)",
    ),
    (
        MAX_FILE_BYTES,
        false,
        "Bedrock quota: bytes per input file, \"Batch inference input file size (in GB)\" in decimal GB (default 1000000000; the planner fills 99%)",
    ),
    (
        MAX_JOB_BYTES,
        false,
        "Bedrock quota: bytes per job, \"Batch inference job size (in GB)\" in decimal GB (default 5000000000; the planner fills 99%)",
    ),
    (
        MAX_CONCURRENT_JOBS,
        false,
        "Bedrock quota: submitted + in-progress jobs per model this stack keeps (default 10, of Service Quotas' 20 that other applications share)",
    ),
    (
        MODEL_QUOTAS,
        false,
        "JSON {modelId: {minRecordsPerJob, maxRecordsPerJob, maxRecordsPerFile, maxFileBytes, maxJobBytes, maxConcurrentJobs}}: quotas of one model over the global ones and the catalog's (any subset of keys)",
    ),
    (
        MAX_OPEN_INTENTS_PER_USER,
        false,
        "batches one user may have in progress at once; over it a request is a 429 with Retry-After (default 20)",
    ),
    (
        MAX_IMAGES_PER_USER_PER_DAY,
        false,
        "images one user may request per UTC day; over it a request is a 429 with Retry-After until midnight UTC (default 200000)",
    ),
    (
        REMAINDER_POLICY,
        false,
        "where a job's unanswered records are re-run when there are at least the model's minimum of them: batch (a new batch job, the default) or on_demand; fewer always run on-demand",
    ),
    (
        IMAGE_POLICY,
        false,
        "how much of a photo the model is given: economy (the receipt alone, found in the photo and cropped, in grey, scaled by its print; the default) or whole (the whole photo in colour at the model's long edge); a photo with no receipt found is kept whole either way",
    ),
    (
        CREATE_BACKOFF_SECS,
        false,
        "seconds the first wait lasts after Bedrock answers a create ServiceQuotaExceeded or Throttling; doubled per refusal in a row, at most an hour (default 60)",
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("configuration: {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// Everything a function needs besides its SDK clients.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub intents_table: String,
    pub results_table: String,
    pub uploads_table: String,
    pub event_bus_name: String,
    pub settings: Settings,
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads from any map (tests pass their own). The Lambdas' required variables first, then
    /// every setting through [`settings_from_map`], the one path the CLI reads too.
    pub fn from_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let required = |var: &'static str| -> Result<String, ConfigError> {
            present(env, var).map(str::to_owned).ok_or(ConfigError {
                var,
                problem: "is required".into(),
            })
        };
        let bucket = |var: &'static str| -> Result<BucketName, ConfigError> {
            BucketName::parse(&required(var)?).map_err(|e| ConfigError {
                var,
                problem: e.rule,
            })
        };
        let role = required(BEDROCK_ROLE_ARN)?;
        if !role.starts_with("arn:aws") || !role.contains(":role/") {
            return Err(ConfigError {
                var: BEDROCK_ROLE_ARN,
                problem: "must be an IAM role ARN".into(),
            });
        }
        required(ALLOWED_MODEL_IDS)?;
        let base = Settings {
            api_base_url: required(API_BASE_URL)?,
            uploads_bucket: bucket(UPLOADS_BUCKET)?,
            manifests_bucket: bucket(MANIFESTS_BUCKET)?,
            outputs_bucket: bucket(OUTPUTS_BUCKET)?,
            bedrock_role_arn: role,
            ..Settings::local("config")
        };
        Ok(Self {
            intents_table: required(INTENTS_TABLE)?,
            results_table: required(RESULTS_TABLE)?,
            uploads_table: required(UPLOADS_TABLE)?,
            event_bus_name: required(EVENT_BUS_NAME)?,
            settings: settings_from_map(env, base)?,
        })
    }
}

/// A variable's value, if it is set and not blank.
fn present<'a>(env: &'a HashMap<String, String>, var: &str) -> Option<&'a str> {
    env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `var` parsed by its type's own rule (which names what it must be), else `default`.
fn parsed<T: std::str::FromStr<Err = String>>(
    env: &HashMap<String, String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match present(env, var) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|problem| ConfigError { var, problem }),
    }
}

fn number<T: std::str::FromStr>(
    env: &HashMap<String, String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match present(env, var) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError {
            var,
            problem: format!("must be a number, got {v:?}"),
        }),
    }
}

fn json<T: serde::de::DeserializeOwned>(
    env: &HashMap<String, String>,
    var: &'static str,
    shape: &str,
    default: T,
) -> Result<T, ConfigError> {
    match present(env, var) {
        None => Ok(default),
        Some(raw) => serde_json::from_str(raw).map_err(|e| ConfigError {
            var,
            problem: format!("must be JSON {shape}: {e}"),
        }),
    }
}

/// `IMAGE_POLICY`, and the input tokens a record is estimated at under it (`base`'s own
/// estimate when the policy is `base`'s).
fn image_policy(
    env: &HashMap<String, String>,
    base: &Settings,
) -> Result<(Policy, u64), ConfigError> {
    let policy = match present(env, IMAGE_POLICY) {
        None => base.image_policy,
        Some(v) => v.parse().map_err(|problem| ConfigError {
            var: IMAGE_POLICY,
            problem,
        })?,
    };
    let tokens = if policy == base.image_policy {
        base.estimate_input_tokens_per_image
    } else {
        crate::domain::settings::input_tokens_per_image(policy)
    };
    Ok((policy, tokens))
}

/// The settings read from the environment, each over `base`'s value when unset: models,
/// quotas, pool, policy, prices and limits. The Lambdas (through [`FunctionConfig`]) and the
/// CLI and `serve` (over their local settings) read them here, with the same defaults.
pub fn settings_from_map(
    env: &HashMap<String, String>,
    base: Settings,
) -> Result<Settings, ConfigError> {
    let job_timeout_hours = number(env, JOB_TIMEOUT_HOURS, base.job_timeout_hours)?;
    if !(24..=168).contains(&job_timeout_hours) {
        return Err(ConfigError {
            var: JOB_TIMEOUT_HOURS,
            problem: "must be 24 to 168".into(),
        });
    }
    let (image_policy, estimate_input_tokens_per_image) = image_policy(env, &base)?;
    let settings = Settings {
        allowed_models: models(env, base.allowed_models.clone())?,
        model_families: families(env, base.model_families.clone())?,
        max_images_per_intent: number(env, MAX_IMAGES_PER_INTENT, base.max_images_per_intent)?,
        job_timeout_hours,
        outbox_grace_secs: number(env, OUTBOX_GRACE_SECS, base.outbox_grace_secs)?,
        stuck_after_secs: number(env, STUCK_AFTER_SECS, base.stuck_after_secs)?,
        create_backoff_secs: number(env, CREATE_BACKOFF_SECS, base.create_backoff_secs)?,
        max_open_intents_per_user: number(
            env,
            MAX_OPEN_INTENTS_PER_USER,
            base.max_open_intents_per_user,
        )?,
        max_images_per_user_per_day: number(
            env,
            MAX_IMAGES_PER_USER_PER_DAY,
            base.max_images_per_user_per_day,
        )?,
        intent_ttl_days: number(env, INTENT_TTL_DAYS, base.intent_ttl_days)?,
        max_output_tokens: number(env, MAX_OUTPUT_TOKENS, base.max_output_tokens)?,
        pool_deadline_secs: number(env, POOL_DEADLINE_SECS, base.pool_deadline_secs)?,
        pool_below_records: number(env, POOL_BELOW_RECORDS, base.pool_below_records)?,
        below_minimum: parsed(env, BELOW_MINIMUM_POLICY, base.below_minimum)?,
        on_demand_concurrency: number(env, ON_DEMAND_CONCURRENCY, base.on_demand_concurrency)?
            .max(1),
        max_record_attempts: number(env, MAX_RECORD_ATTEMPTS, base.max_record_attempts)?.max(1),
        receipt_max_age_days: number(env, RECEIPT_MAX_AGE_DAYS, base.receipt_max_age_days)?.max(0),
        duplicate_window_days: number(env, DUPLICATE_WINDOW_DAYS, base.duplicate_window_days)?
            .max(0),
        reask: parsed(env, REASK_POLICY, base.reask.clone())?,
        image_policy,
        estimate_input_tokens_per_image,
        remainder_policy: parsed(env, REMAINDER_POLICY, base.remainder_policy)?,
        prices: json(
            env,
            MODEL_PRICES,
            "{modelId: {inputPerMtok, outputPerMtok}}",
            base.prices.clone(),
        )?,
        quotas: quotas(env, &base.quotas)?,
        min_deadline_secs: number(env, MIN_DEADLINE_SECS, base.min_deadline_secs)?.max(0),
        deadline_margin_secs: number(env, DEADLINE_MARGIN_SECS, base.deadline_margin_secs)?
            .max(0),
        results_by: results_by(env, base.results_by)?,
        results_tz: results_tz(env, &base.results_tz)?,
        on_demand_rates: json(
            env,
            ON_DEMAND_RATES,
            "{modelId: {requestsPerMinute, tokensPerMinute}}",
            base.on_demand_rates.clone(),
        )?,
        model_quotas: json(
            env,
            MODEL_QUOTAS,
            "{modelId: {minRecordsPerJob, maxRecordsPerJob, maxRecordsPerFile, maxFileBytes, maxJobBytes, maxConcurrentJobs}}",
            base.model_quotas.clone(),
        )?,
        ..base
    };
    Ok(settings)
}

/// `RESULTS_BY`: a local time, `HH:MM`.
fn results_by(
    env: &HashMap<String, String>,
    default: Option<chrono::NaiveTime>,
) -> Result<Option<chrono::NaiveTime>, ConfigError> {
    match present(env, RESULTS_BY) {
        None => Ok(default),
        Some(raw) => chrono::NaiveTime::parse_from_str(raw, "%H:%M")
            .map(Some)
            .map_err(|_| ConfigError {
                var: RESULTS_BY,
                problem: format!("must be a local time HH:MM, got {raw:?}"),
            }),
    }
}

/// `RESULTS_TZ`: a zone of the IANA tz database.
fn results_tz(env: &HashMap<String, String>, default: &str) -> Result<String, ConfigError> {
    let raw = present(env, RESULTS_TZ).unwrap_or(default);
    raw.parse::<chrono_tz::Tz>()
        .map(|_| raw.to_owned())
        .map_err(|_| ConfigError {
            var: RESULTS_TZ,
            problem: format!("must be an IANA time zone such as Europe/Berlin, got {raw:?}"),
        })
}

fn models(
    env: &HashMap<String, String>,
    default: Vec<ModelId>,
) -> Result<Vec<ModelId>, ConfigError> {
    let Some(raw) = present(env, ALLOWED_MODEL_IDS) else {
        return Ok(default);
    };
    let models = raw
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            let id = ModelId::parse(m).map_err(|e| ConfigError {
                var: ALLOWED_MODEL_IDS,
                problem: e.rule,
            })?;
            Ok(id)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if models.is_empty() {
        return Err(ConfigError {
            var: ALLOWED_MODEL_IDS,
            problem: "must name at least one model".into(),
        });
    }
    Ok(models)
}

fn families(
    env: &HashMap<String, String>,
    default: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let families: BTreeMap<String, String> =
        json(env, MODEL_FAMILIES, "{modelIdOrArn: family}", default)?;
    let known = crate::domain::family::family_names();
    match families.iter().find(|(_, f)| !known.contains(&f.as_str())) {
        Some((model, f)) => Err(ConfigError {
            var: MODEL_FAMILIES,
            problem: format!("{model}: unknown family {f:?}; families are {known:?}"),
        }),
        None => Ok(families),
    }
}

fn quotas(env: &HashMap<String, String>, base: &Quotas) -> Result<Quotas, ConfigError> {
    Ok(Quotas {
        min_records_per_job: number(env, MIN_RECORDS_PER_JOB, base.min_records_per_job)?,
        max_records_per_job: number(env, MAX_RECORDS_PER_JOB, base.max_records_per_job)?,
        max_records_per_file: number(env, MAX_RECORDS_PER_FILE, base.max_records_per_file)?,
        max_file_bytes: number(env, MAX_FILE_BYTES, base.max_file_bytes)?,
        max_job_bytes: number(env, MAX_JOB_BYTES, base.max_job_bytes)?,
        max_concurrent_jobs: number(env, MAX_CONCURRENT_JOBS, base.max_concurrent_jobs)?,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
