//! Bedrock's batch quotas of a model, and the one way to read them: [`quotas_for_model`] (the
//! global ones, then the catalog's for its foundation model, then the configured ones).

use crate::domain::catalog::{CatalogModel, CATALOG};
use crate::domain::ids::ModelId;
use serde::{Deserialize, Serialize};

/// Bedrock batch quotas of one model. All are per model and region in Service Quotas and differ
/// between accounts, so every one is a setting (globally, and per model through `MODEL_QUOTAS`);
/// the defaults are the Service Quotas defaults (see [`crate::domain::catalog`] for their names and
/// sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    /// "Minimum number of records per batch inference job for {model}": a job with fewer
    /// records is refused (100 for every model in the catalog).
    pub min_records_per_job: u64,
    /// "Records per batch inference job for {model}".
    pub max_records_per_job: u64,
    /// "Records per input file per batch inference job for {model}".
    pub max_records_per_file: u64,
    /// "Batch inference input file size (in GB) for {model}", in bytes: 1 GB = 10^9 bytes.
    pub max_file_bytes: u64,
    /// "Batch inference job size (in GB) for {model}", in bytes: 5 GB = 5 x 10^9 bytes.
    pub max_job_bytes: u64,
    /// The most submitted + in-progress jobs this stack keeps per model: a share of "Sum of
    /// in-progress and submitted batch inference jobs using a base model for {model}" (20 by
    /// default), which other applications in the account share.
    pub max_concurrent_jobs: u32,
}

/// One decimal gigabyte. Service Quotas names the byte quotas "(in GB)"; no AWS source says
/// whether that is 10^9 or 2^30 bytes, and 10^9 is the smaller reading, so packing to it is safe
/// under either.
pub const GB: u64 = 1_000_000_000;

/// The share of a byte quota the planner fills: 1% is kept back, so a job packed to the quota
/// still passes if Bedrock counts bytes we do not (a line terminator, a rewritten URI).
pub const BYTE_QUOTA_MARGIN_PERCENT: u64 = 1;

impl Default for Quotas {
    fn default() -> Self {
        Self {
            min_records_per_job: 100,
            max_records_per_job: 50_000,
            max_records_per_file: 50_000,
            // Decimal GB (see [`GB`]), as literals: infra's tests read these defaults.
            max_file_bytes: 1_000_000_000,
            max_job_bytes: 5 * 1_000_000_000,
            max_concurrent_jobs: 10,
        }
    }
}

impl Quotas {
    /// The bytes the planner puts in one input file: the quota less the margin.
    pub fn file_bytes_budget(&self) -> u64 {
        self.max_file_bytes - self.max_file_bytes / 100 * BYTE_QUOTA_MARGIN_PERCENT
    }

    /// The bytes the planner puts in one job: the quota less the margin.
    pub fn job_bytes_budget(&self) -> u64 {
        self.max_job_bytes - self.max_job_bytes / 100 * BYTE_QUOTA_MARGIN_PERCENT
    }

    /// These quotas with each field `o` sets.
    pub fn with(&self, o: &QuotaOverrides) -> Quotas {
        Quotas {
            min_records_per_job: o.min_records_per_job.unwrap_or(self.min_records_per_job),
            max_records_per_job: o.max_records_per_job.unwrap_or(self.max_records_per_job),
            max_records_per_file: o.max_records_per_file.unwrap_or(self.max_records_per_file),
            max_file_bytes: o.max_file_bytes.unwrap_or(self.max_file_bytes),
            max_job_bytes: o.max_job_bytes.unwrap_or(self.max_job_bytes),
            max_concurrent_jobs: o.max_concurrent_jobs.unwrap_or(self.max_concurrent_jobs),
        }
    }
}

/// Some quotas of one model, over the global ones: the catalog's where a model differs from the
/// common default, and `MODEL_QUOTAS` (`{modelId: {minRecordsPerJob, …}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_records_per_job: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records_per_job: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records_per_file: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_job_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_jobs: Option<u32>,
}

/// The quotas of `model`: the global ones, then the catalog's for its foundation model, then
/// the configured ones for its id (or its foundation model's id), each field over the last.
pub fn quotas_for_model(
    global: &Quotas,
    configured: &std::collections::BTreeMap<String, QuotaOverrides>,
    model: &ModelId,
) -> Quotas {
    let base = crate::domain::family::base_model_id(model);
    let mut q = global.clone();
    if let Some(m) = base.and_then(|b| CATALOG.iter().find(|m| m.id == b)) {
        q = q.with(&catalog_quotas(m));
    }
    if let Some(o) = base.and_then(|b| configured.get(b)) {
        q = q.with(o);
    }
    if let Some(o) = configured.get(model.as_str()) {
        q = q.with(o);
    }
    q
}

/// A catalog model's batch quotas where they differ from the common defaults
/// ([`Quotas::default`]).
///
/// Service Quotas (Amazon Bedrock, per model and Region; the General Reference's "Amazon
/// Bedrock endpoints and quotas" table as of 2025-06, read 2026-12-03; check your account's):
///
/// | quota name ("… for {model}") | default | adjustable |
/// | --- | --- | --- |
/// | Minimum number of records per batch inference job | 100 | no |
/// | Records per batch inference job | 50,000 | yes |
/// | Records per input file per batch inference job | 50,000 | yes |
/// | Batch inference input file size (in GB) | 1 | no |
/// | Batch inference job size (in GB) | 5 (Nova Pro V1: 100) | no |
/// | Sum of in-progress and submitted batch inference jobs using a base model | 20 | yes |
///
/// The stack takes at most `MAX_CONCURRENT_JOBS` (10) of the 20 concurrent jobs: other
/// applications share the account's quota, and a create they crowd out waits (see
/// `app::submit`).
fn catalog_quotas(m: &CatalogModel) -> QuotaOverrides {
    QuotaOverrides {
        max_job_bytes: m.job_gb.map(|gb| gb * GB),
        ..Default::default()
    }
}
