//! The events intake takes besides HTTP requests: a direct invoke, S3 "Object Created" for the
//! uploads index, and the nightly schedule. They stay plain events (no router): nobody reads an
//! asynchronous source's answer, and a direct invoke is a trusted caller naming its user.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use serde_json::{json, Value};
use shared::app::intake::{accept, parse_payload, Caller, IntakeError};
use shared::app::uploads::{index_object_created, nightly, Indexed};
use shared::app::Deps;

/// Which door a request came through; the answer goes back in the same shape.
#[derive(Debug)]
pub enum IntakeEvent {
    RestV1(Box<ApiGatewayProxyRequest>),
    HttpV2(Box<ApiGatewayV2httpRequest>),
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
    /// Tells the event kinds apart by their markers: HTTP API v2 carries `version: "2.0"`,
    /// REST v1 carries `httpMethod` next to `requestContext`.
    pub fn from_value(event: Value) -> Result<Self, IntakeError> {
        let has_context = event.get("requestContext").is_some();
        let malformed = |e: serde_json::Error| {
            IntakeError::invalid("event", format!("malformed API Gateway event: {e}"))
        };
        if has_context && event.get("version").and_then(Value::as_str) == Some("2.0") {
            return Ok(Self::HttpV2(Box::new(
                serde_json::from_value(event).map_err(malformed)?,
            )));
        }
        if has_context && event.get("httpMethod").is_some() {
            return Ok(Self::RestV1(Box::new(
                serde_json::from_value(event).map_err(malformed)?,
            )));
        }
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

/// Runs a non-HTTP event: a direct invoke, an upload's index entry, or the nightly run.
pub(crate) async fn run(deps: &Deps, event: IntakeEvent) -> Result<(u16, Value), IntakeError> {
    let new = match event {
        IntakeEvent::RestV1(_) | IntakeEvent::HttpV2(_) => {
            return Err(IntakeError::invalid(
                "event",
                "an API request goes to the router",
            ))
        }
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
            let r = nightly(deps, day).await.map_err(stage_error)?;
            return Ok((
                200,
                json!({"day": day, "users": r.users, "created": r.created, "existing": r.existing, "refused": r.refused}),
            ));
        }
    };
    let accepted = accept(deps, new).await?;
    let body = serde_json::to_value(&accepted).map_err(|e| {
        IntakeError::Unavailable(shared::ports::PortError::new(
            shared::ports::ErrorKind::Unexpected,
            format!("the answer could not be serialized: {e}"),
        ))
    })?;
    Ok((202, body))
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
        Err(e) => Err(stage_error(e)),
    }
}

/// A stage failure of the index or the nightly run: retryable ones are 503 (the invoker's
/// retry policy and DLQ take over), permanent ones are refused.
fn stage_error(e: shared::app::StageError) -> IntakeError {
    match e {
        shared::app::StageError::Retryable(p) => IntakeError::Unavailable(p),
        shared::app::StageError::Permanent(m) => IntakeError::invalid("event", m),
    }
}
