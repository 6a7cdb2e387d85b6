//! Typed settings shared by every stage. Reading them from the environment is the job of each
//! binary's config; this is only the shape and its defaults (from bedrock-batch-facts.md).

use crate::domain::catalog::{CATALOG, DEFAULT_MODELS};
use crate::domain::deadline::{OnDemandRate, Pace};
use crate::domain::ids::{BucketName, ModelId};
pub use crate::domain::quotas::{
    quotas_for_model, QuotaOverrides, Quotas, BYTE_QUOTA_MARGIN_PERCENT, GB,
};
use serde::{Deserialize, Serialize};

/// On-demand rate of a model without one of its own: 100 requests and 200,000 tokens a minute,
/// a new account's Claude quotas ("On-demand InvokeModel requests/tokens per minute for
/// {model}", Service Quotas; the bedrock-runtime endpoint counts input and output tokens
/// together, user guide "Quotas for the bedrock-runtime endpoint"). Accounts differ: set
/// `ON_DEMAND_RATES` to yours, or to the share of it this stack may use.
pub const DEFAULT_ON_DEMAND_RATE: OnDemandRate = OnDemandRate {
    requests_per_minute: 100.0,
    tokens_per_minute: 200_000.0,
};

/// What happens at the pool deadline to small intents that still do not make a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BelowMinimum {
    /// Keep them pooled for the next window (they run when enough records arrive).
    Wait,
    /// Seal them into a job padded up to the minimum with tiny text records (1 output
    /// token each), whose answers are dropped. Bedrock accepts any valid record, so this
    /// costs the padding's tokens at the batch price.
    Pad,
    /// Run their records one by one through InvokeModel, a few at a time, at the
    /// on-demand price.
    OnDemand,
}

impl std::str::FromStr for BelowMinimum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wait" => Ok(Self::Wait),
            "pad" => Ok(Self::Pad),
            "on_demand" => Ok(Self::OnDemand),
            other => Err(format!("must be wait, pad or on_demand, got {other:?}")),
        }
    }
}

/// How a flagged answer (one that failed a receipt check) is asked again, once (`REASK_POLICY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaskPolicy {
    /// Never: a flagged answer stays as it is, for a person to review.
    Off,
    /// The upright whole photo at full size instead of the economy crop, on-demand.
    Whole,
    /// The same photo to a stronger model, on-demand.
    Model(crate::domain::ids::ModelId),
}

impl std::str::FromStr for ReaskPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "whole" => Ok(Self::Whole),
            other => match other.strip_prefix("model:") {
                Some(id) => crate::domain::ids::ModelId::parse(id)
                    .map(Self::Model)
                    .map_err(|e| format!("model:<id> names no model id: {e}")),
                None => Err(format!("must be off, whole or model:<id>, got {other:?}")),
            },
        }
    }
}

impl std::fmt::Display for ReaskPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Whole => f.write_str("whole"),
            Self::Model(id) => write!(f, "model:{id}"),
        }
    }
}

/// Where the unanswered records of a job that ended short are re-run when there are at least the
/// model's minimum of them (fewer always run on-demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemainderPolicy {
    /// In a new batch job of the same intent, at the batch price (hours, like any job).
    Batch,
    /// On-demand at once, at the full price (up to 1,000 per job end).
    OnDemand,
}

impl std::str::FromStr for RemainderPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "batch" => Ok(Self::Batch),
            "on_demand" => Ok(Self::OnDemand),
            other => Err(format!("must be batch or on_demand, got {other:?}")),
        }
    }
}

/// On-demand prices of a model in USD per million tokens; batch costs `batch_discount` of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// A cost estimate for a number of images, batch against on-demand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimate {
    pub batch_usd: f64,
    pub on_demand_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Base of `statusUrl`: `{api_base_url}/api/batch/jobs/{jobId}`.
    pub api_base_url: String,
    pub uploads_bucket: BucketName,
    pub manifests_bucket: BucketName,
    pub outputs_bucket: BucketName,
    /// The service role Bedrock assumes to read manifests and write outputs.
    pub bedrock_role_arn: String,
    /// Models a client may ask for; the first is the default.
    pub allowed_models: Vec<ModelId>,
    /// Model id or ARN -> record family (`claude`, `nova`), for models whose id does not say
    /// it: application inference profiles. Others are told from the id.
    pub model_families: std::collections::BTreeMap<String, String>,
    pub max_images_per_intent: usize,
    /// `timeoutDurationInHours`, 24..=168.
    pub job_timeout_hours: u32,
    /// An outbox older than this is taken over by whoever sees it (a replay or the sweep);
    /// younger, it belongs to the writer still publishing it.
    pub outbox_grace_secs: i64,
    /// An intent still REQUESTED or MANIFEST_READY this long after its last change is
    /// re-announced by the reconciler.
    pub stuck_after_secs: i64,
    /// First wait after Bedrock answers a create "not now" (ServiceQuotaExceeded, Throttling);
    /// doubled with each refusal in a row, up to an hour.
    pub create_backoff_secs: i64,
    /// Days after which a finished intent expires from the store (DynamoDB TTL).
    pub intent_ttl_days: i64,
    pub max_output_tokens: u32,
    /// `estimatedDuration` = overhead + images x per-image seconds.
    pub estimate_overhead_secs: u64,
    pub estimate_secs_per_image: f64,
    /// The global quotas: every model's, unless the catalog or `model_quotas` says otherwise
    /// (read them through [`Settings::quotas_for`]).
    pub quotas: Quotas,
    /// Per-model quotas over the global ones (`MODEL_QUOTAS`), by model id or foundation id.
    #[serde(default)]
    pub model_quotas: std::collections::BTreeMap<String, QuotaOverrides>,
    /// Seconds a small intent waits in its pool before the below-minimum policy applies.
    pub pool_deadline_secs: i64,
    /// Intents with fewer accepted records than this (and under the same share of a job's
    /// bytes) are pooled into shared jobs; 0 means the job minimum. The default, 10,000 (a
    /// fifth of a job), packs a busy night into about as few jobs as the quotas allow, which
    /// matters under the per-model cap on concurrent jobs (see `domain::pool`).
    pub pool_below_records: u64,
    pub below_minimum: BelowMinimum,
    /// On-demand invocations in flight at once (policy `on_demand` and record re-runs).
    pub on_demand_concurrency: usize,
    /// Attempts per record, the batch job's included; retryable failures are re-run until
    /// this many were made.
    pub max_record_attempts: u32,
    /// Days before its upload a receipt's date may be (`RECEIPT_MAX_AGE_DAYS`, the `date` check).
    pub receipt_max_age_days: i64,
    /// Days an image's content hash answers its duplicates (`DUPLICATE_WINDOW_DAYS`; 0: off).
    pub duplicate_window_days: i64,
    /// How a flagged answer is asked again (`REASK_POLICY`; see `app::reask`).
    pub reask: ReaskPolicy,
    /// Where a remainder of at least the model's minimum records is re-run.
    pub remainder_policy: RemainderPolicy,
    /// Batches one user may have in progress at once (`app::intake::limits`).
    pub max_open_intents_per_user: usize,
    /// Images one user may request per UTC day (`app::intake::limits`).
    pub max_images_per_user_per_day: u64,
    /// On-demand prices per model id; a model without one gets no cost estimate.
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
    /// Batch price as a fraction of on-demand (0.5 at the time of writing).
    pub batch_discount: f64,
    /// Input tokens of one record: the image's and the prompt's (see
    /// [`input_tokens_per_image`], which `IMAGE_POLICY` chooses).
    pub estimate_input_tokens_per_image: u64,
    pub estimate_output_tokens_per_image: u64,
    /// How much of a photo the model is given (`IMAGE_POLICY`).
    #[serde(default)]
    pub image_policy: crate::domain::normalize::Policy,
    /// A request's `deadline` must be at least this far ahead (`MIN_DEADLINE_SECS`).
    pub min_deadline_secs: i64,
    /// The nightly run's deadline: this local time (`RESULTS_BY`, `HH:MM`) in `results_tz`,
    /// the next one after the run starts. None: nightly intents have no deadline.
    #[serde(default)]
    pub results_by: Option<chrono::NaiveTime>,
    /// An IANA time zone (`RESULTS_TZ`), checked when read.
    pub results_tz: String,
    /// Seconds kept in hand before a deadline (`DEADLINE_MARGIN_SECS`): a job is stopped this
    /// long before on-demand would have to start, which covers the reconciler's schedule.
    pub deadline_margin_secs: i64,
    /// On-demand rates per model over [`Settings::on_demand_rate`] (`ON_DEMAND_RATES`).
    #[serde(default)]
    pub on_demand_rates: std::collections::BTreeMap<String, OnDemandRate>,
    /// The on-demand rate of a model without one of its own.
    pub on_demand_rate: OnDemandRate,
    /// Webhooks may go to `http` and to this machine or a private network: the embedded
    /// backend's receivers. Never when deployed.
    #[serde(default)]
    pub webhook_local: bool,
}

impl Settings {
    pub fn default_model(&self) -> Option<&ModelId> {
        self.allowed_models.first()
    }

    /// Settings for a local run: bucket names as the CDK stack would name them for `stage`.
    pub fn local(stage: &str) -> Self {
        let bucket = |suffix: &str| {
            BucketName::parse(&format!("batch-orchestrator-{stage}-{suffix}"))
                .unwrap_or_else(|e| panic!("stage name {stage:?} makes an invalid bucket: {e}"))
        };
        Self {
            api_base_url: "http://127.0.0.1:8080".into(),
            uploads_bucket: bucket("uploads"),
            manifests_bucket: bucket("manifests"),
            outputs_bucket: bucket("outputs"),
            bedrock_role_arn: "arn:aws:iam::000000000000:role/batch-orchestrator-bedrock".into(),
            allowed_models: DEFAULT_MODELS
                .iter()
                .map(|m| ModelId::parse(m).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
            model_families: std::collections::BTreeMap::new(),
            // Bedrock's records per job: a request of more is better sent as several. Long
            // lists live outside the intent item (see `app::lists`), so this is no store cap.
            max_images_per_intent: 50_000,
            job_timeout_hours: 24,
            outbox_grace_secs: 30,
            stuck_after_secs: 900,
            create_backoff_secs: 60,
            intent_ttl_days: 30,
            max_output_tokens: 1024,
            estimate_overhead_secs: 900,
            estimate_secs_per_image: 0.5,
            quotas: Quotas::default(),
            model_quotas: std::collections::BTreeMap::new(),
            pool_deadline_secs: 6 * 3600,
            pool_below_records: 10_000,
            below_minimum: BelowMinimum::OnDemand,
            on_demand_concurrency: 4,
            max_record_attempts: 3,
            receipt_max_age_days: 365,
            duplicate_window_days: 30,
            reask: ReaskPolicy::Whole,
            remainder_policy: RemainderPolicy::Batch,
            max_open_intents_per_user: 20,
            // Four full jobs: a heavy user's day, not the night's every slot.
            max_images_per_user_per_day: 200_000,
            prices: default_prices(),
            batch_discount: 0.5,
            // The JSON answer is ~300 tokens.
            estimate_input_tokens_per_image: input_tokens_per_image(
                crate::domain::normalize::Policy::Economy,
            ),
            estimate_output_tokens_per_image: 300,
            image_policy: crate::domain::normalize::Policy::Economy,
            min_deadline_secs: 900,
            results_by: None,
            results_tz: "UTC".into(),
            // Two passes of the reconciler's 5-minute schedule.
            deadline_margin_secs: 600,
            on_demand_rates: std::collections::BTreeMap::new(),
            on_demand_rate: DEFAULT_ON_DEMAND_RATE,
            webhook_local: false,
        }
    }

    /// The pace a model's jobs are planned on until they have a history: `estimatedDuration`'s
    /// overhead as the queue, and its seconds per image.
    pub fn default_pace(&self) -> Pace {
        Pace {
            queue_secs: self.estimate_overhead_secs as f64,
            secs_per_record: self.estimate_secs_per_image,
        }
    }

    /// Quota tokens one record of `model` is expected to burn: input plus output times the
    /// model's burndown rate (see `domain::rate`).
    pub fn quota_tokens_per_record(&self, model: &ModelId) -> u64 {
        crate::domain::rate::quota_tokens(
            model.as_str(),
            self.estimate_input_tokens_per_image,
            self.estimate_output_tokens_per_image,
        )
    }

    /// The rate on-demand runners keep for `model` under the shared budget: what deadlines
    /// and cut-offs are planned on (see `domain::rate`).
    pub fn paced_rate(&self, model: &ModelId) -> OnDemandRate {
        crate::domain::rate::paced(self.rate_for(model))
    }

    /// How answers of `prompt_version` are reviewed at `now` (see `domain::receipt`).
    pub fn review(
        &self,
        prompt_version: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<crate::domain::receipt::Review> {
        crate::domain::receipt::Review::of(
            prompt_version,
            now.date_naive(),
            self.receipt_max_age_days,
        )
    }

    /// The on-demand rate of `model`: its own (by id or foundation id), else the common one.
    pub fn rate_for(&self, model: &ModelId) -> OnDemandRate {
        self.on_demand_rates
            .get(model.as_str())
            .or_else(|| {
                crate::domain::family::base_model_id(model)
                    .and_then(|b| self.on_demand_rates.get(b))
            })
            .copied()
            .unwrap_or(self.on_demand_rate)
    }

    /// The nightly run's deadline: the first `results_by` in `results_tz` after `now` (None
    /// without `results_by`, or with a zone the tz database does not know).
    pub fn nightly_deadline(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::TimeZone as _;
        let at = self.results_by?;
        let tz: chrono_tz::Tz = self.results_tz.parse().ok()?;
        let today = now.with_timezone(&tz).date_naive();
        (0..3).find_map(|d| {
            let day = today + chrono::Duration::days(d);
            // A time a DST change skips is taken an hour later; a repeated one, the first.
            let local = tz
                .from_local_datetime(&day.and_time(at))
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(day.and_time(at) + chrono::Duration::hours(1)))
                        .earliest()
                })?
                .with_timezone(&chrono::Utc);
            (local > now).then_some(local)
        })
    }

    /// Cost of `images` images on `model`, batch against on-demand; None without a price.
    pub fn estimate_cost(&self, model: &ModelId, images: usize) -> Option<CostEstimate> {
        let price = self.price_for(model)?;
        let n = images as f64;
        let on_demand = n
            * (self.estimate_input_tokens_per_image as f64 * price.input_per_mtok
                + self.estimate_output_tokens_per_image as f64 * price.output_per_mtok)
            / 1e6;
        let round = |x: f64| (x * 1e6).round() / 1e6;
        Some(CostEstimate {
            batch_usd: round(on_demand * self.batch_discount),
            on_demand_usd: round(on_demand),
        })
    }

    /// The on-demand price of `model` (an inference profile costs what its model costs).
    pub fn price_for(&self, model: &ModelId) -> Option<ModelPrice> {
        self.prices
            .get(model.as_str())
            .or_else(|| {
                crate::domain::family::base_model_id(model).and_then(|b| self.prices.get(b))
            })
            .copied()
    }

    /// On-demand USD of `input` and `output` tokens on `model`; None without a price.
    pub fn token_cost_usd(&self, model: &ModelId, input: u64, output: u64) -> Option<f64> {
        let price = self.price_for(model)?;
        Some((input as f64 * price.input_per_mtok + output as f64 * price.output_per_mtok) / 1e6)
    }

    /// The quotas of `model` (see [`quotas_for_model`]).
    pub fn quotas_for(&self, model: &ModelId) -> Quotas {
        quotas_for_model(&self.quotas, &self.model_quotas, model)
    }

    /// Below this many records an intent of `model` is pooled: `pool_below_records`, never
    /// under the job minimum.
    pub fn pool_threshold(&self, model: &ModelId) -> u64 {
        let q = &self.quotas_for(model);
        self.pool_below_records
            .min(q.max_records_per_job)
            .max(q.min_records_per_job)
    }

    /// True when an intent of `model` with `records` accepted records in `bytes` of manifest lines runs in
    /// jobs of its own: it reaches the pool threshold by records, or the same share of a
    /// job by bytes (and the minimum either way).
    pub fn runs_alone(&self, model: &ModelId, records: u64, bytes: u64) -> bool {
        let q = &self.quotas_for(model);
        let threshold = self.pool_threshold(model);
        let share_of_bytes = (u128::from(q.max_job_bytes) * u128::from(threshold))
            / u128::from(q.max_records_per_job.max(1));
        records >= threshold
            || (records >= q.min_records_per_job && u128::from(bytes) >= share_of_bytes)
    }

    /// What one shared job of `model` may take when the pool packs it: a job's records, and 99%
    /// of its byte budget (a member's lines are rewritten with the shared job's record ids and
    /// folders).
    pub fn pool_capacity(&self, model: &ModelId) -> crate::domain::pool::Capacity {
        let q = self.quotas_for(model);
        crate::domain::pool::Capacity {
            records: q.max_records_per_job,
            bytes: q.job_bytes_budget() / 100 * 99,
        }
    }

    /// The wait after the `refusals`-th "not now" in a row: `create_backoff_secs` doubled each
    /// time, at most an hour.
    pub fn create_backoff(&self, refusals: u32) -> chrono::Duration {
        let base = chrono::Duration::seconds(self.create_backoff_secs.max(0));
        crate::domain::backoff::exponential(refusals, base, chrono::Duration::hours(1), 0.0)
    }

    pub fn estimated_duration_secs(&self, images: usize) -> u64 {
        self.estimate_overhead_secs + (images as f64 * self.estimate_secs_per_image).ceil() as u64
    }
}

/// Tokens the prompt adds to each record (its text and the message framing).
pub const PROMPT_TOKENS: u64 = 100;

/// Input tokens one record is expected to cost under `policy`: the image's (width x height /
/// 750) and the prompt's. Whole: a phone photo at a 1568 px long edge is 1176x1568, 2,458
/// tokens, which Claude itself caps at about 1,600 (image-facts.md). Economy: the mean of the
/// receipt-photo corpus, measured by `cargo bench --bench tokens` (docs/performance.md,
/// "Tokens per receipt").
pub const fn input_tokens_per_image(policy: crate::domain::normalize::Policy) -> u64 {
    match policy {
        crate::domain::normalize::Policy::Whole => 1_500 + PROMPT_TOKENS,
        crate::domain::normalize::Policy::Economy => ECONOMY_IMAGE_TOKENS + PROMPT_TOKENS,
    }
}

/// The mean image tokens of the economy policy on the corpus (see [`input_tokens_per_image`]).
pub const ECONOMY_IMAGE_TOKENS: u64 = 746;

/// On-demand list prices (USD per million tokens, us-east-1) of the catalog's models, as
/// published when this was written: check them, and set `MODEL_PRICES` for yours.
pub fn default_prices() -> std::collections::BTreeMap<String, ModelPrice> {
    CATALOG
        .iter()
        .map(|m| {
            (
                m.id.to_owned(),
                ModelPrice {
                    input_per_mtok: m.input_per_mtok,
                    output_per_mtok: m.output_per_mtok,
                },
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
