//! Intake: validate a batch request at the boundary, record the intent with one conditional
//! create keyed on intentId, and announce it. Replays return the stored answer.
//!
//! Replay: the same intentId with the same payload writes nothing and answers 202 with the
//! stored jobId and `cached: true` (re-announcing only an outbox its writer abandoned). The
//! same intentId with another payload is refused (409).

use crate::app::outbox::{publish_owned, take_over};
use crate::app::{Deps, StageError};
use crate::domain::ids::UserId;
use crate::domain::intent::{BatchIntent, ImageSelection, NewIntent};
use crate::ports::{Created, PortError};
use serde::{Deserialize, Serialize};

mod fields;
pub mod limits;
use fields::check_deadline;
pub use fields::{parse_day, parse_payload, parse_request};

/// Largest request body accepted: API Gateway's own payload limit, 10 MB ("Payload size",
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>). Above
/// it the router answers a JSON 413. Deployed, a Lambda's synchronous invoke payload (6 MB,
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>) binds first.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// From the authorizer's claims; a `userId` in the body is ignored.
    User(UserId),
    /// A direct invoke (another service, an operator): it names the user in the body.
    Trusted,
}

/// Intent ids the service makes itself: shared jobs' and nightly runs'. A client's intent
/// may not take one (it would collide with, or pre-empt, the service's own).
pub const RESERVED_INTENT_PREFIXES: &[&str] = &["pool-", "nightly-"];

/// The 202 answer. Field names are the predecessor's client contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub job_id: String,
    pub intent_id: String,
    pub status_url: String,
    /// Seconds until results are expected.
    pub estimated_duration: u64,
    pub cached: bool,
    /// `batch` (a job of its own) or `pool` (below the job minimum: it waits for a shared
    /// job, or the below-minimum policy at the pool deadline). Unknown for a whole day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_path: Option<EstimatedPath>,
    /// Batch against on-demand cost of the images, from the configured per-model prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_cost: Option<crate::domain::settings::CostEstimate>,
    /// When the client wants every result, if it said (a replay answers the first request's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// When the plan says the results are ready (see `domain::deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<chrono::DateTime<chrono::Utc>>,
}

/// How an accepted request is expected to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstimatedPath {
    /// Bedrock batch jobs of its own.
    Batch,
    /// Below the pooling threshold: it waits for a shared job (or the below-minimum policy).
    Pool,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// 400: the field and the rule it broke.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 401: no usable identity.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: a well-formed field names something that is not the caller's (another user's
    /// upload prefix).
    #[error("{field}: {message}")]
    Forbidden { field: String, message: String },
    /// 409: the intentId was used before for a different request.
    #[error("intentId {0} was already used for a different request")]
    KeyReused(String),
    /// 429: the caller is over a per-user limit (`app::intake::limits`); retry after this many seconds.
    #[error("{field}: {message}")]
    OverLimit {
        field: String,
        message: String,
        retry_after_secs: u64,
    },
    /// 503: the intent may be stored but could not be confirmed or announced; retry with the
    /// same intentId.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] PortError),
}

impl IntakeError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden { .. } => 403,
            Self::KeyReused(_) => 409,
            Self::OverLimit { .. } => 429,
            Self::Unavailable(_) => 503,
        }
    }
}

impl From<StageError> for IntakeError {
    fn from(e: StageError) -> Self {
        match e {
            StageError::Retryable(p) => Self::Unavailable(p),
            StageError::Permanent(m) => {
                Self::Unavailable(PortError::new(crate::ports::ErrorKind::Unexpected, m))
            }
        }
    }
}

/// The stored intent a request replays: the same intentId, hash and user. A different payload
/// under the same key is refused (409), naming only the caller's own intentId.
async fn replayed(
    deps: &Deps,
    old: BatchIntent,
    intent: &BatchIntent,
    hash: &str,
) -> Result<BatchIntent, IntakeError> {
    if old.payload_hash != hash || old.user_id != intent.user_id {
        tracing::warn!("intentId reused with a different payload");
        return Err(IntakeError::KeyReused(intent.client_id().to_string()));
    }
    crate::metrics::count(crate::metrics::INTENTS_DUPLICATE, 1);
    take_over(deps, &old).await?;
    Ok(old)
}

/// Migration: an item written before keys were scoped per user is stored under the client's
/// bare intentId. A replay of it from the same user is still that intent (so no second job);
/// another user's item under that key is none of this caller's business. Items expire after
/// `INTENT_TTL_DAYS`, after which this lookup finds nothing and can be removed.
async fn legacy_replay(
    deps: &Deps,
    intent: &BatchIntent,
) -> Result<Option<BatchIntent>, IntakeError> {
    let Some(client) = &intent.client_intent_id else {
        return Ok(None);
    };
    let old = deps
        .store
        .get(client)
        .await
        .map_err(IntakeError::Unavailable)?;
    Ok(old.filter(|old| old.client_intent_id.is_none() && old.user_id == intent.user_id))
}

/// Records the intent (once) and announces it. See the module docs for replays.
#[tracing::instrument(skip_all, fields(
    intent_id = %req.intent_id,
    job_id = %crate::domain::ids::JobId::for_intent(&req.intent_id),
    trace_id = %req.trace_id,
))]
pub async fn accept(deps: &Deps, mut req: NewIntent) -> Result<Accepted, IntakeError> {
    let images = req.selection.len_hint();
    let hash = req.payload_hash();
    let deadline_refused = check_deadline(&deps.settings, deps.clock.now(), req.deadline);
    if deadline_refused.is_err() && req.client_intent_id.is_none() {
        // The service's own (nightly) intent, made too close to RESULTS_BY: it runs without
        // a deadline rather than not at all.
        req.deadline = None;
    } else if let Err(e) = deadline_refused {
        // A retry of a stored request whose deadline has come closer is still that request.
        return match deps.store.get(&req.intent_id).await {
            Ok(Some(old)) if old.payload_hash == hash && old.user_id == req.user_id => {
                let copies = copies_known(deps, &old).await;
                Ok(answer(deps, &old, true, (images, copies)))
            }
            Ok(_) => Err(e),
            Err(p) => Err(IntakeError::Unavailable(p)),
        };
    }
    let mut intent = BatchIntent::new(req, deps.clock.now(), deps.settings.intent_ttl_days);
    intent.estimated_completion = Some(estimate_completion(deps, &intent, images).await?);
    // A replay of an item from before scoped keys writes nothing, not even a keys list.
    let legacy = legacy_replay(deps, &intent).await?;
    // A client's new request (not a replay, nor the service's own nightly intent) counts
    // against its user's limits, before anything is written (its keys list included).
    let taken = match legacy {
        None if intent.client_intent_id.is_some() => limits::check_new(deps, &intent).await?,
        _ => None,
    };
    if legacy.is_none() {
        // Over INLINE_LIST keys, the keys go to their list first (the hash is the request's).
        let selection = std::mem::replace(&mut intent.selection, ImageSelection::Keys(Vec::new()));
        let kept = crate::app::lists::keep_keys(deps, &intent.job_id, &hash, selection).await;
        intent.selection = match kept {
            Ok(selection) => selection,
            Err(e) => {
                if let Some(t) = taken {
                    t.give_back(deps, true).await;
                }
                return Err(e.into());
            }
        };
    }
    let (stored, cached) = match legacy {
        Some(old) => (replayed(deps, old, &intent, &hash).await?, true),
        None => match deps
            .store
            .create(&intent)
            .await
            .map_err(IntakeError::Unavailable)?
        {
            Created::New => {
                crate::metrics::count(crate::metrics::INTENTS_ACCEPTED, 1);
                tracing::info!(job_id = %intent.job_id, "intent recorded");
                (publish_owned(deps, intent).await?, false)
            }
            Created::Existing(old) => {
                // Recorded meanwhile by a retry of the same request: its count stands, this
                // one's images go back (its open place is the same id's, and stays).
                if let Some(t) = taken {
                    t.give_back(deps, false).await;
                }
                (replayed(deps, *old, &intent, &hash).await?, true)
            }
        },
    };
    let copies = copies_known(deps, &stored).await;
    Ok(answer(deps, &stored, cached, (images, copies)))
}

/// Copies the index already knows are left out of the estimate: they will not be sent. An
/// index that cannot be read leaves every image in it.
async fn copies_known(deps: &Deps, intent: &BatchIntent) -> usize {
    match crate::app::duplicates::known_copies(deps, intent).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "known copies unread; the estimate counts every image");
            0
        }
    }
}

/// When the results of `images` images are expected: the deadline plan (waves ahead, the
/// learned pace, on-demand for what batch cannot make), plus, for an intent that will pool,
/// its wait in the pool (cut short when a deadline needs it sealed sooner).
async fn estimate_completion(
    deps: &Deps,
    intent: &BatchIntent,
    images: usize,
) -> Result<chrono::DateTime<chrono::Utc>, IntakeError> {
    let split = crate::app::deadline::plan(deps, intent, images as u64).await?;
    let pooled = images > 0 && (images as u64) < deps.settings.pool_threshold(&intent.model_id);
    if !pooled {
        return Ok(split.estimated_completion);
    }
    let now = deps.clock.now();
    let mut wait = chrono::Duration::seconds(deps.settings.pool_deadline_secs.max(0));
    if let Some(deadline) = intent.deadline {
        let slack = deadline - split.estimated_completion;
        wait = wait.min(slack.max(chrono::Duration::zero()));
    }
    Ok(split.estimated_completion.max(now) + wait)
}

/// The 202 answer for a stored intent of `images` images, `copies` of them known copies of
/// earlier ones (left out of the cost).
fn answer(
    deps: &Deps,
    stored: &BatchIntent,
    cached: bool,
    (images, copies): (usize, usize),
) -> Accepted {
    let now = deps.clock.now();
    let pooled = images > 0 && (images as u64) < deps.settings.pool_threshold(&stored.model_id);
    let completion = stored.estimated_completion;
    Accepted {
        status_url: format!(
            "{}/api/batch/jobs/{}",
            deps.settings.api_base_url.trim_end_matches('/'),
            stored.job_id
        ),
        job_id: stored.job_id.to_string(),
        intent_id: stored.client_id().to_string(),
        estimated_duration: match completion {
            Some(at) => (at - now).num_seconds().max(0) as u64,
            // Intents stored before the plan kept an estimate.
            None => deps.settings.estimated_duration_secs(images),
        },
        cached,
        estimated_path: (images > 0).then_some(if pooled {
            EstimatedPath::Pool
        } else {
            EstimatedPath::Batch
        }),
        estimated_cost: (images > 0)
            .then(|| {
                let sent = images.saturating_sub(copies);
                deps.settings.estimate_cost(&stored.model_id, sent)
            })
            .flatten(),
        deadline: stored.deadline,
        estimated_completion: completion,
    }
}
