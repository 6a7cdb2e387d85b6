//! Every answer intake (and the operator page, `src/ops`) gives, in one place: the JSON body of a refusal (with its metric), the
//! HTTP response of an [`ApiError`] (status, JSON body, `Retry-After`), the 503 for an answer
//! that could not be serialized, and a plain event's answer (its status inside the JSON).
//! The one mapping from a stage error to an answer is `IntakeError: From<StageError>`
//! (`shared::app::intake`): a stage that failed is a 503, to retry with the same intentId.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shared::app::intake::{IntakeError, MAX_BODY_BYTES};
use shared::app::status::ListError;

/// Seconds a client waits before retrying a 503.
const RETRY_AFTER_UNAVAILABLE: &str = "5";

/// A refusal, as the HTTP API answers it.
#[derive(Debug)]
pub enum ApiError {
    Intake(IntakeError),
    NotFound(String),
    MethodNotAllowed,
    TooLarge,
}

impl From<IntakeError> for ApiError {
    fn from(e: IntakeError) -> Self {
        Self::Intake(e)
    }
}

impl From<shared::app::StageError> for ApiError {
    fn from(e: shared::app::StageError) -> Self {
        Self::Intake(e.into())
    }
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::BadCursor(e) => Self::Intake(IntakeError::invalid("cursor", e.to_string())),
            ListError::NoJob(job) => Self::NotFound(format!("no job {job}")),
            ListError::Stage(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            Self::Intake(IntakeError::OverLimit {
                retry_after_secs, ..
            }) => Some(retry_after_secs.to_string()),
            Self::Intake(IntakeError::Unavailable(_)) => Some(RETRY_AFTER_UNAVAILABLE.to_owned()),
            _ => None,
        };
        let (status, body) = match &self {
            Self::Intake(e) => (e.status_code(), refusal(e, "request refused")),
            Self::NotFound(what) => (404, json!({"error": "not_found", "message": what})),
            Self::MethodNotAllowed => (
                405,
                json!({"error": "method_not_allowed", "message": "this method is not supported on this path; see the Allow header"}),
            ),
            Self::TooLarge => (
                413,
                json!({"error": "payload_too_large", "field": "body", "message": format!("body: must be at most {MAX_BODY_BYTES} bytes")}),
            ),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(body)).into_response();
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert("retry-after", v);
        }
        response
    }
}

/// Serializes an answer; a failure is a 503 logged with its cause, never a silent `null`.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, IntakeError> {
    serde_json::to_value(value).map_err(|e| {
        IntakeError::Unavailable(shared::ports::PortError::new(
            shared::ports::ErrorKind::Unexpected,
            format!("the answer could not be serialized: {e}"),
        ))
    })
}

/// A plain event's answer: its JSON with the status in it (`statusCode`), as a direct invoke
/// reads it.
pub fn event_answer(result: Result<(u16, Value), IntakeError>) -> Value {
    let (status, mut body) = match result {
        Ok(answer) => answer,
        Err(e) => (e.status_code(), refusal(&e, "event refused")),
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("statusCode".into(), json!(status));
    }
    body
}

/// The 503 of an answer that could not be given at all (its cause logged, never shown):
/// status, `Retry-After` and body.
pub fn unavailable(cause: impl Into<String>) -> (StatusCode, &'static str, Value) {
    let source = shared::ports::PortError::new(shared::ports::ErrorKind::Unexpected, cause);
    let body = error_body(&IntakeError::Unavailable(source));
    (
        StatusCode::SERVICE_UNAVAILABLE,
        RETRY_AFTER_UNAVAILABLE,
        body,
    )
}

/// A refusal's body, logged (`what`) and counted; an internal error is logged with its chain
/// and answered without internals.
fn refusal(e: &IntakeError, what: &str) -> Value {
    if !matches!(e, IntakeError::Unavailable(_)) {
        tracing::info!(status = e.status_code(), error = %e, "{what}");
    }
    error_body(e)
}

/// The JSON body of a refusal, with its metric.
pub fn error_body(err: &IntakeError) -> Value {
    let (reason, body) = match err {
        IntakeError::Invalid { field, message } => (
            "validation",
            json!({"error": "validation_failed", "field": field, "message": format!("{field}: {message}")}),
        ),
        IntakeError::Unauthorized(m) => (
            "unauthorized",
            json!({"error": "unauthorized", "message": m}),
        ),
        IntakeError::Forbidden { field, message } => (
            "forbidden",
            json!({"error": "forbidden", "field": field, "message": format!("{field}: {message}")}),
        ),
        IntakeError::KeyReused(id) => (
            "intent_id_reused",
            json!({
                "error": "intent_id_reused",
                "field": "intentId",
                "message": format!("intentId {id} was already used for a different request; use a new intentId for a new action"),
            }),
        ),
        IntakeError::OverLimit {
            field,
            message,
            retry_after_secs,
        } => (
            "over_limit",
            json!({
                "error": "too_many_requests",
                "field": field,
                "message": format!("{field}: {message}"),
                "retryAfter": retry_after_secs,
            }),
        ),
        IntakeError::Unavailable(source) => {
            tracing::error!(error = %source, source = ?std::error::Error::source(source), "intake unavailable");
            (
                "unavailable",
                json!({"error": "unavailable", "message": "the request could not be recorded right now; retry with the same intentId"}),
            )
        }
    };
    shared::metrics::rejected(reason);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::ports::{ErrorKind, PortError};

    #[test]
    fn when_a_plain_event_is_answered_should_carry_its_status_in_the_body() {
        let ok = event_answer(Ok((200, json!({"indexed": true}))));
        assert_eq!(ok, json!({"indexed": true, "statusCode": 200}));
        let refused = event_answer(Err(IntakeError::invalid("images", "must not be empty")));
        assert_eq!(refused["statusCode"], 400);
        assert_eq!(refused["field"], "images");
        assert_eq!(refused["message"], "images: must not be empty");
    }

    #[test]
    fn when_a_stage_fails_should_answer_503_with_retry_after_whatever_its_kind() {
        // The one mapping from a stage error: permanent or retryable, the client retries
        // with the same intentId (and a permanent fault is logged as one).
        let errors = || {
            [
                shared::app::StageError::Permanent("a refused transition".into()),
                shared::app::StageError::Retryable(PortError::new(ErrorKind::Throttled, "slow")),
            ]
        };
        for e in errors() {
            let response = ApiError::from(e).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "5");
        }
        for e in errors() {
            assert_eq!(event_answer(Err(e.into()))["statusCode"], 503);
        }
    }

    #[test]
    fn when_a_list_cannot_be_shown_should_answer_400_for_the_cursor_and_404_for_the_job() {
        use shared::app::status::{BadCursor, ListError};
        let cursor = ApiError::from(ListError::BadCursor(BadCursor)).into_response();
        assert_eq!(cursor.status(), StatusCode::BAD_REQUEST);
        let job = shared::domain::ids::JobId::parse("bj-3ae489935892792f79a38850").expect("id");
        let missing = ApiError::from(ListError::NoJob(job)).into_response();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let over = ApiError::Intake(IntakeError::OverLimit {
            field: "images".into(),
            message: "too many today".into(),
            retry_after_secs: 42,
        })
        .into_response();
        assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(over.headers()["retry-after"], "42");
    }
}
