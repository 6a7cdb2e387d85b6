//! intake: the front door. Its HTTP API (`POST /api/batch/jobs`, the job routes) is one axum
//! [`router`] that the Lambda runs under `lambda_http`'s conversion of API Gateway REST (v1) and
//! HTTP API (v2) events, and that `serve` serves on localhost: one code path for both. Besides
//! requests, the same function takes plain events ([`events`]): a direct invoke, S3 "Object
//! Created" for the uploads index, and the nightly schedule.

pub mod auth;
pub mod events;
pub mod lambda;
pub mod router;

pub use auth::{Auth, LocalKey, USER_CLAIM};
pub use events::IntakeEvent;
pub use router::router;

use serde_json::{json, Value};
use shared::app::intake::IntakeError;
use shared::app::Deps;

/// The JSON body of a refusal, with its metric. Internal errors are logged with their chain
/// and answered without internals.
pub(crate) fn error_body(err: &IntakeError) -> Value {
    match err {
        IntakeError::Invalid { .. } => shared::metrics::rejected("validation"),
        IntakeError::Unauthorized(_) => shared::metrics::rejected("unauthorized"),
        IntakeError::Forbidden { .. } => shared::metrics::rejected("forbidden"),
        IntakeError::KeyReused(_) => shared::metrics::rejected("intent_id_reused"),
        IntakeError::OverLimit { .. } => shared::metrics::rejected("over_limit"),
        IntakeError::Unavailable(_) => shared::metrics::rejected("unavailable"),
    }
    match err {
        IntakeError::Invalid { field, message } => {
            json!({"error": "validation_failed", "field": field, "message": format!("{field}: {message}")})
        }
        IntakeError::Unauthorized(m) => json!({"error": "unauthorized", "message": m}),
        IntakeError::Forbidden { field, message } => {
            json!({"error": "forbidden", "field": field, "message": format!("{field}: {message}")})
        }
        IntakeError::KeyReused(id) => json!({
            "error": "intent_id_reused",
            "field": "intentId",
            "message": format!("intentId {id} was already used for a different request; use a new intentId for a new action"),
        }),
        IntakeError::OverLimit {
            field,
            message,
            retry_after_secs,
        } => json!({
            "error": "too_many_requests",
            "field": field,
            "message": format!("{field}: {message}"),
            "retryAfter": retry_after_secs,
        }),
        IntakeError::Unavailable(source) => {
            tracing::error!(error = %source, source = ?std::error::Error::source(source), "intake unavailable");
            json!({"error": "unavailable", "message": "the request could not be recorded right now; retry with the same intentId"})
        }
    }
}

/// True for the asynchronous sources (S3 events, the nightly schedule): nobody reads their
/// answer, so a retryable failure must fail the invocation for EventBridge's retry policy
/// and dead-letter queue to take over.
fn is_async_source(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.s3")
        || event.get("nightlyRun").is_some()
}

/// The Lambda entry point: [`handle`], except that an asynchronous source's retryable
/// failure (5xx) fails the invocation instead of answering it.
pub async fn invoke(deps: &Deps, event: Value) -> Result<Value, String> {
    let async_source = is_async_source(&event);
    let answer = handle(deps, event).await;
    let failed = answer["statusCode"].as_u64().is_some_and(|c| c >= 500);
    if async_source && failed {
        return Err(format!("retryable failure, to be retried: {answer}"));
    }
    Ok(answer)
}

/// Handles one invocation; the answer mirrors the door it came through: an API event gets the
/// proxy response, a plain event its JSON answer with `statusCode` in it.
pub async fn handle(deps: &Deps, event: Value) -> Value {
    let api = event.get("requestContext").is_some();
    let event = match IntakeEvent::from_value(event) {
        Ok(event) => event,
        Err(e) => return answer(e.status_code(), error_body(&e), api),
    };
    let request = match event {
        IntakeEvent::RestV1(r) => lambda_http::request::LambdaRequest::ApiGatewayV1(*r),
        IntakeEvent::HttpV2(r) => lambda_http::request::LambdaRequest::ApiGatewayV2(*r),
        event => {
            return match events::run(deps, event).await {
                Ok((status, body)) => answer(status, body, false),
                Err(e) => {
                    if !matches!(e, IntakeError::Unavailable(_)) {
                        tracing::info!(status = e.status_code(), error = %e, "event refused");
                    }
                    answer(e.status_code(), error_body(&e), false)
                }
            }
        }
    };
    lambda::call(router(deps.clone(), Auth::Authorizer), request).await
}

/// An answer in the shape of its door.
pub(crate) fn answer(status: u16, body: Value, http: bool) -> Value {
    if http {
        let mut headers = json!({"content-type": "application/json"});
        if status == 503 {
            headers["retry-after"] = json!("5");
        }
        return json!({"statusCode": status, "headers": headers, "body": body.to_string(), "isBase64Encoded": false});
    }
    let mut out = body;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("statusCode".into(), json!(status));
    }
    out
}
