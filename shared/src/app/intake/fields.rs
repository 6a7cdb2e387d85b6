//! Intake's boundary: the request body read into its typed fields, each checked against its
//! rule, every refusal naming the field (see the module above for what is done with them).

use crate::app::intake::{Caller, IntakeError, MAX_BODY_BYTES, RESERVED_INTENT_PREFIXES};
use crate::domain::ids::{IntentId, ModelId, ObjectKey, TraceId, UserId};
use crate::domain::intent::{user_upload_prefix, ImageSelection, NewIntent};
use crate::domain::manifest::{prompt, DEFAULT_PROMPT_VERSION};
use crate::domain::settings::Settings;
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::HashMap;

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
            Ok(Some(crate::domain::webhook::Webhook::new(url, secret)))
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

/// A request's deadline: at least `MIN_DEADLINE_SECS` ahead, and no later than a batch job's
/// timeout (`JOB_TIMEOUT_HOURS`), past which no plan of batch jobs means anything.
pub(super) fn check_deadline(
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
