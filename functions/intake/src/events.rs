//! The plain events' door (the `intake-events` Lambda): a direct invoke, S3 "Object Created" for
//! the uploads index, and the nightly schedule. They stay plain events (no router): nobody reads
//! an asynchronous source's answer, and a direct invoke is a trusted caller naming its user.

use crate::answer::{event_answer, to_json};
use serde_json::{json, Value};
use shared::app::intake::{accept, parse_payload, Caller, IntakeError};
use shared::app::nightly::nightly;
use shared::app::uploads::{index_object_created, Indexed};
use shared::app::Deps;

/// The plain events, told apart by their markers.
#[derive(Debug)]
pub enum IntakeEvent {
    /// A trusted caller invoking the function with the payload object itself.
    Direct(Value),
    /// S3 "Object Created" (EventBridge) for the uploads bucket: the uploads index.
    ObjectCreated {
        bucket: String,
        key: String,
        size: u64,
        etag: String,
    },
    /// The nightly schedule: `{"nightlyRun": {"day": "YYYY-MM-DD"}}`; without a day, the day
    /// before today (UTC).
    Nightly(Option<chrono::NaiveDate>),
}

impl IntakeEvent {
    /// S3's event by its source and detail type, the nightly run by its `nightlyRun`; anything
    /// else is a direct invoke's payload.
    pub fn from_value(event: Value) -> Result<Self, IntakeError> {
        if event.get("source").and_then(Value::as_str) == Some("aws.s3")
            && event.get("detail-type").and_then(Value::as_str) == Some("Object Created")
        {
            let detail = &event["detail"];
            let text = |v: &Value, field: &str| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    IntakeError::invalid(field, "is required in an S3 Object Created event")
                })
            };
            // EventBridge carries the key as stored (not URL-encoded, unlike S3 notifications).
            return Ok(Self::ObjectCreated {
                bucket: text(&detail["bucket"]["name"], "detail.bucket.name")?,
                key: text(&detail["object"]["key"], "detail.object.key")?,
                size: detail["object"]["size"].as_u64().unwrap_or(0),
                etag: detail["object"]["etag"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        if let Some(run) = event.get("nightlyRun") {
            let day = match run.get("day") {
                None | Some(Value::Null) => None,
                Some(d) => Some(
                    d.as_str()
                        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                        .ok_or_else(|| {
                            IntakeError::invalid("nightlyRun.day", "must be a date YYYY-MM-DD")
                        })?,
                ),
            };
            return Ok(Self::Nightly(day));
        }
        Ok(Self::Direct(event))
    }
}

/// The Lambda entry point: [`handle`], except that an asynchronous source's (S3's event, the
/// nightly schedule) retryable failure fails the invocation instead of answering it: nobody
/// reads that answer, and a failed invocation is what Lambda retries and then dead-letters.
pub async fn invoke(deps: &Deps, event: Value) -> Result<Value, String> {
    let (answer, retry) = answered(deps, event).await;
    if retry {
        return Err(format!("retryable failure, to be retried: {answer}"));
    }
    Ok(answer)
}

/// Handles one plain event; the answer is its JSON with `statusCode` in it.
pub async fn handle(deps: &Deps, event: Value) -> Value {
    answered(deps, event).await.0
}

/// The answer, and whether it is an asynchronous source's retryable failure.
async fn answered(deps: &Deps, event: Value) -> (Value, bool) {
    let (result, from_async_source) = match IntakeEvent::from_value(event) {
        Ok(event) => {
            let from_async_source = matches!(
                event,
                IntakeEvent::ObjectCreated { .. } | IntakeEvent::Nightly(_)
            );
            (run(deps, event).await, from_async_source)
        }
        Err(e) => (Err(e), false),
    };
    let retry = from_async_source && matches!(result, Err(IntakeError::Unavailable(_)));
    (event_answer(result), retry)
}

/// Runs a plain event: a direct invoke, an upload's index entry, or the nightly run.
async fn run(deps: &Deps, event: IntakeEvent) -> Result<(u16, Value), IntakeError> {
    let new = match event {
        IntakeEvent::Direct(payload) => {
            let trace = payload
                .get("traceId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut payload = payload;
            if let Some(obj) = payload.as_object_mut() {
                obj.remove("traceId");
            }
            parse_payload(&deps.settings, &Caller::Trusted, payload, trace.as_deref())?
        }
        IntakeEvent::ObjectCreated {
            bucket,
            key,
            size,
            etag,
        } => return object_created(deps, &bucket, &key, size, &etag).await,
        IntakeEvent::Nightly(day) => {
            let day =
                day.unwrap_or_else(|| deps.clock.now().date_naive().pred_opt().unwrap_or_default());
            let r = nightly(deps, day).await?;
            return Ok((
                200,
                json!({"day": day, "users": r.users, "created": r.created, "existing": r.existing, "refused": r.refused}),
            ));
        }
    };
    let accepted = accept(deps, new).await?;
    Ok((202, to_json(&accepted)?))
}

async fn object_created(
    deps: &Deps,
    bucket: &str,
    key: &str,
    size: u64,
    etag: &str,
) -> Result<(u16, Value), IntakeError> {
    match index_object_created(deps, bucket, key, size, etag).await {
        Ok(Indexed::Recorded(u)) => Ok((
            200,
            json!({"indexed": true, "userId": u.user_id, "day": u.day, "key": u.key}),
        )),
        Ok(Indexed::Ignored(reason)) => {
            tracing::info!(bucket, key, reason, "object not indexed");
            Ok((200, json!({"indexed": false, "reason": reason})))
        }
        Err(e) => Err(e.into()),
    }
}
