//! Intake: validate a batch request at the boundary, record the intent with one conditional
//! create keyed on intentId, and announce it. Replays return the stored answer.
//!
//! Replay: the same intentId with the same payload writes nothing and answers 202 with the
//! stored jobId and `cached: true` (re-announcing only an outbox its writer abandoned). The
//! same intentId with another payload is refused (409).

use super::outbox::{publish_owned, take_over};
use super::{Deps, StageError};
use crate::domain::ids::{IntentId, ModelId, ObjectKey, TraceId, UserId};
use crate::domain::intent::{user_upload_prefix, BatchIntent, ImageSelection, NewIntent};
use crate::domain::manifest::{prompt, DEFAULT_PROMPT_VERSION};
use crate::domain::settings::Settings;
use crate::ports::{Created, PortError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// 429: the caller is over a per-user limit (`app::limits`); retry after this many seconds.
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

/// The body as clients send it. Unknown fields are refused so a typo is not silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Payload {
    intent_id: String,
    #[serde(default, deserialize_with = "present")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    images: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    day: Option<String>,
    #[serde(default, deserialize_with = "present")]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    prompt_version: Option<String>,
    #[serde(default, deserialize_with = "present")]
    deadline: Option<String>,
    #[serde(default, deserialize_with = "present")]
    webhook: Option<String>,
    #[serde(default, deserialize_with = "present")]
    webhook_secret: Option<String>,
}

/// An optional field that, when given, has its type: `null` is refused like any other wrong
/// type (the OpenAPI document does not allow it), not taken as "absent".
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Parses and validates a request body into a [`NewIntent`]. Every error names the field.
/// The body is read straight into the typed payload, so a key given twice is refused rather
/// than silently resolved (parsers disagree on which copy wins).
pub fn parse_request(
    settings: &Settings,
    caller: &Caller,
    body: &[u8],
    trace_id: Option<&str>,
) -> Result<NewIntent, IntakeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(IntakeError::invalid(
            "body",
            format!("must be at most {MAX_BODY_BYTES} bytes, got {}", body.len()),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| IntakeError::invalid("body", format!("must be UTF-8 ({e})")))?;
    if text.trim().is_empty() {
        return Err(IntakeError::invalid(
            "body",
            "must be a JSON object, got nothing",
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err(IntakeError::invalid("body", "must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let payload: Payload = serde_path_to_error::deserialize(&mut de).map_err(payload_error)?;
    de.end()
        .map_err(|e| IntakeError::invalid("body", format!("must be valid JSON ({e})")))?;
    validate(settings, caller, payload, trace_id)
}

/// Validates an already-decoded JSON payload (a direct invoke hands over the object itself).
pub fn parse_payload(
    settings: &Settings,
    caller: &Caller,
    value: serde_json::Value,
    trace_id: Option<&str>,
) -> Result<NewIntent, IntakeError> {
    if !value.is_object() {
        return Err(IntakeError::invalid("body", "must be a JSON object"));
    }
    let payload: Payload = serde_path_to_error::deserialize(value).map_err(payload_error)?;
    validate(settings, caller, payload, trace_id)
}

/// Names the field a decoding error is about: the path where it failed, or for a missing,
/// unknown or repeated field the name serde puts in backticks.
fn payload_error(e: serde_path_to_error::Error<serde_json::Error>) -> IntakeError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.classify() != serde_json::error::Category::Data {
        return IntakeError::invalid("body", format!("must be valid JSON ({inner})"));
    }
    let message = inner.to_string();
    if path != "." {
        return IntakeError::invalid(path, message);
    }
    let named = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|p| message.starts_with(p));
    match message.split('`').nth(1) {
        Some(field) if named => IntakeError::invalid(field, message.clone()),
        _ => IntakeError::invalid("body", format!("must be a JSON object ({message})")),
    }
}

/// A calendar date written exactly `YYYY-MM-DD` (chrono alone would take `2026-1-5`).
pub fn parse_day(raw: &str) -> Option<NaiveDate> {
    let shape = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shape
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
}

fn validate(
    settings: &Settings,
    caller: &Caller,
    payload: Payload,
    trace_id: Option<&str>,
) -> Result<NewIntent, IntakeError> {
    let intent_id = client_intent_id(&payload.intent_id)?;
    let user_id = caller_user(caller, payload.user_id.as_deref())?;
    let selection = match (payload.images, payload.day) {
        (Some(_), Some(_)) => {
            return Err(IntakeError::invalid(
                "images",
                "give either images or day, not both",
            ))
        }
        (None, None) => return Err(IntakeError::invalid("images", "is required (or give day)")),
        (None, Some(day)) => ImageSelection::Day(
            parse_day(&day)
                .ok_or_else(|| IntakeError::invalid("day", "must be a date as YYYY-MM-DD"))?,
        ),
        (Some(images), None) => ImageSelection::Keys(image_keys(settings, &user_id, &images)?),
    };
    let model_id = model(settings, payload.model_id)?;
    let prompt_version = payload
        .prompt_version
        .unwrap_or_else(|| DEFAULT_PROMPT_VERSION.to_owned());
    if prompt(&prompt_version).is_none() {
        return Err(IntakeError::invalid(
            "promptVersion",
            format!("must be a known prompt version ({DEFAULT_PROMPT_VERSION})"),
        ));
    }
    let trace_id = trace_id
        .and_then(|t| TraceId::parse(t).ok())
        .unwrap_or_else(TraceId::generate);
    let deadline = match payload.deadline.as_deref() {
        None => None,
        Some(raw) => Some(
            chrono::DateTime::parse_from_rfc3339(raw)
                .map_err(|_| {
                    IntakeError::invalid(
                        "deadline",
                        "must be an RFC 3339 date-time, e.g. 2026-12-04T07:00:00+01:00",
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    let webhook = webhook(settings, payload.webhook, payload.webhook_secret)?;
    Ok(NewIntent {
        intent_id: IntentId::scoped(&user_id, &intent_id),
        client_intent_id: Some(intent_id),
        user_id,
        selection,
        model_id,
        prompt_version,
        trace_id,
        deadline,
        webhook,
    })
}

/// `webhook` and `webhookSecret`: both or neither (see `domain::webhook` for their rules).
fn webhook(
    settings: &Settings,
    url: Option<String>,
    secret: Option<String>,
) -> Result<Option<crate::domain::webhook::Webhook>, IntakeError> {
    match (url, secret) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(IntakeError::invalid(
            "webhookSecret",
            "is required with webhook (whsec_ and the base64 of 24 to 48 bytes)",
        )),
        (None, Some(_)) => Err(IntakeError::invalid(
            "webhook",
            "is required with webhookSecret",
        )),
        (Some(url), Some(secret)) => {
            crate::domain::webhook::check_url(&url, settings.webhook_local)
                .map_err(|rule| IntakeError::invalid("webhook", rule))?;
            crate::domain::webhook::check_secret(&secret)
                .map_err(|rule| IntakeError::invalid("webhookSecret", rule))?;
            Ok(Some(crate::domain::webhook::Webhook { url, secret }))
        }
    }
}

/// The client's intentId: its grammar, and not one of the service's own prefixes.
fn client_intent_id(raw: &str) -> Result<IntentId, IntakeError> {
    let intent_id = IntentId::parse(raw).map_err(|e| IntakeError::invalid("intentId", e.rule))?;
    if let Some(prefix) = RESERVED_INTENT_PREFIXES
        .iter()
        .find(|p| intent_id.as_str().starts_with(*p))
    {
        return Err(IntakeError::invalid(
            "intentId",
            format!("must not start with `{prefix}` (reserved for shared and nightly jobs)"),
        ));
    }
    Ok(intent_id)
}

/// The user a request is for: the authorizer's, or (a direct invoke) the body's `userId`.
fn caller_user(caller: &Caller, body_user: Option<&str>) -> Result<UserId, IntakeError> {
    let user_id = match caller {
        Caller::User(user) => user.clone(),
        Caller::Trusted => {
            let raw = body_user
                .ok_or_else(|| IntakeError::invalid("userId", "is required for a direct invoke"))?;
            UserId::parse(raw).map_err(|e| IntakeError::invalid("userId", e.rule))?
        }
    };
    if crate::domain::intent::is_reserved_user(&user_id) {
        return Err(IntakeError::invalid(
            "userId",
            "is reserved for the service's own identities (system.…) and cannot make requests",
        ));
    }
    Ok(user_id)
}

/// The requested image keys: 1 to `max_images_per_intent` distinct upload keys, each under
/// the caller's own prefix (a well-formed key under another user's is a 403).
fn image_keys(
    settings: &Settings,
    user_id: &UserId,
    images: &[String],
) -> Result<Vec<ObjectKey>, IntakeError> {
    if images.is_empty() {
        return Err(IntakeError::invalid("images", "must not be empty"));
    }
    let max = settings.max_images_per_intent;
    if images.len() > max {
        let got = images.len();
        return Err(IntakeError::invalid(
            "images",
            format!("must hold at most {max} keys, got {got}"),
        ));
    }
    let prefix = user_upload_prefix(user_id);
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(images.len());
    let mut keys = Vec::with_capacity(images.len());
    for (i, raw) in images.iter().enumerate() {
        let field = format!("images[{i}]");
        let key = ObjectKey::parse(raw).map_err(|e| IntakeError::invalid(&field, e.rule))?;
        if !raw.starts_with("uploads/") || raw.split('/').count() < 3 {
            return Err(IntakeError::invalid(
                &field,
                format!("must be an upload key, uploads/{{userId}}/{{name}} ({prefix}…)"),
            ));
        }
        if !raw.starts_with(&prefix) {
            return Err(IntakeError::Forbidden {
                field,
                message: format!("must be an object under your upload prefix {prefix}"),
            });
        }
        if let Some(rule) = crate::domain::uploads::key_too_long(raw) {
            return Err(IntakeError::invalid(&field, rule));
        }
        if let Some(first) = seen.insert(raw.as_str(), i) {
            return Err(IntakeError::invalid(
                &field,
                format!("duplicates images[{first}]"),
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The model: one of the configured ones, or the default.
fn model(settings: &Settings, raw: Option<String>) -> Result<ModelId, IntakeError> {
    let Some(raw) = raw else {
        return settings.default_model().cloned().ok_or_else(|| {
            IntakeError::invalid("modelId", "is required (no default model is configured)")
        });
    };
    let model = ModelId::parse(&raw).map_err(|e| IntakeError::invalid("modelId", e.rule))?;
    if !settings.allowed_models.contains(&model) {
        let allowed: Vec<&str> = settings.allowed_models.iter().map(|m| m.as_str()).collect();
        return Err(IntakeError::invalid(
            "modelId",
            format!(
                "must be one of the configured models: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(model)
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
                Ok(answer(deps, &old, true, images))
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
    if legacy.is_none() && intent.client_intent_id.is_some() {
        super::limits::check_new(deps, &intent).await?;
    }
    if legacy.is_none() {
        // Over INLINE_LIST keys, the keys go to their list first (the hash is the request's).
        let selection = std::mem::replace(&mut intent.selection, ImageSelection::Keys(Vec::new()));
        intent.selection = super::lists::keep_keys(deps, &intent.job_id, &hash, selection).await?;
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
            Created::Existing(old) => (replayed(deps, *old, &intent, &hash).await?, true),
        },
    };
    Ok(answer(deps, &stored, cached, images))
}

/// A request's deadline: at least `MIN_DEADLINE_SECS` ahead, and no later than a batch job's
/// timeout (`JOB_TIMEOUT_HOURS`), past which no plan of batch jobs means anything.
fn check_deadline(
    settings: &Settings,
    now: chrono::DateTime<chrono::Utc>,
    deadline: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), IntakeError> {
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let min = chrono::Duration::seconds(settings.min_deadline_secs);
    let max = chrono::Duration::hours(i64::from(settings.job_timeout_hours));
    if deadline < now + min {
        return Err(IntakeError::invalid(
            "deadline",
            format!(
                "must be at least {} s ahead (MIN_DEADLINE_SECS)",
                settings.min_deadline_secs
            ),
        ));
    }
    if deadline > now + max {
        return Err(IntakeError::invalid(
            "deadline",
            format!(
                "must be at most {} hours ahead (the batch job timeout)",
                settings.job_timeout_hours
            ),
        ));
    }
    Ok(())
}

/// When the results of `images` images are expected: the deadline plan (waves ahead, the
/// learned pace, on-demand for what batch cannot make), plus, for an intent that will pool,
/// its wait in the pool (cut short when a deadline needs it sealed sooner).
async fn estimate_completion(
    deps: &Deps,
    intent: &BatchIntent,
    images: usize,
) -> Result<chrono::DateTime<chrono::Utc>, IntakeError> {
    let split = super::deadline::plan(deps, intent, images as u64).await?;
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

/// The 202 answer for a stored intent of `images` images.
fn answer(deps: &Deps, stored: &BatchIntent, cached: bool, images: usize) -> Accepted {
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
            .then(|| deps.settings.estimate_cost(&stored.model_id, images))
            .flatten(),
        deadline: stored.deadline,
        estimated_completion: completion,
    }
}
