//! An API Gateway event through the router: `lambda_http` turns the REST (v1) or HTTP API (v2)
//! event into an `http::Request` (its request context, with the authorizer's claims, rides
//! along as an extension), the router answers, and the answer goes back as the proxy response
//! API Gateway expects (`statusCode`, `headers`, `body`).

use crate::router::ApiError;
use axum::body::Body;
use axum::response::IntoResponse as _;
use base64::Engine as _;
use lambda_http::request::LambdaRequest;
use serde_json::{json, Value};
use shared::app::intake::IntakeError;
use tower::ServiceExt as _;

/// What a URI path may not hold as is (a REST API's `path` arrives decoded).
const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The router's answer to one API Gateway event, as the proxy response.
pub async fn call(router: axum::Router, request: LambdaRequest) -> Value {
    let response = match to_http(request) {
        Ok(request) => match router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(e) => ApiError::Intake(e).into_response(),
    };
    let (parts, body) = response.into_parts();
    // The router's answers are small JSON documents, already in memory; reading one cannot
    // fail, but if it did the client gets a 503 to retry, never an empty 200.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "the router's answer could not be read");
            let unavailable = shared::ports::PortError::new(
                shared::ports::ErrorKind::Unexpected,
                format!("the answer could not be read: {e}"),
            );
            return crate::answer(
                503,
                crate::error_body(&IntakeError::Unavailable(unavailable)),
                true,
            );
        }
    };
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.insert(name.as_str().to_owned(), json!(value));
        }
    }
    json!({
        "statusCode": parts.status.as_u16(),
        "headers": headers,
        "body": String::from_utf8_lossy(&bytes),
        "isBase64Encoded": false,
    })
}

/// `lambda_http`'s conversion, with the path as the client sent it: `lambda_http` puts a REST
/// API's stage in front of the path, and the routes are stage-free.
fn to_http(request: LambdaRequest) -> Result<axum::http::Request<Body>, IntakeError> {
    let (raw_path, body, base64) = match &request {
        LambdaRequest::ApiGatewayV1(r) => (r.path.clone(), r.body.as_deref(), r.is_base64_encoded),
        LambdaRequest::ApiGatewayV2(r) => {
            (r.raw_path.clone(), r.body.as_deref(), r.is_base64_encoded)
        }
        _ => (None, None, false),
    };
    // `lambda_http` panics on a body marked base64 that does not decode: refuse it first.
    if let (Some(body), true) = (body, base64) {
        if let Err(e) = base64::engine::general_purpose::STANDARD.decode(body) {
            let rule = format!("is marked base64 but does not decode ({e})");
            return Err(IntakeError::invalid("body", rule));
        }
    }
    let raw_path = raw_path.unwrap_or_default();
    let malformed =
        |m: String| IntakeError::invalid("event", format!("malformed API Gateway event: {m}"));
    // The conversion parses the host and path as a URL and panics on one that is not (a
    // hostile event): that is a malformed event, answered 400, not a crashed invocation.
    let converted = std::panic::catch_unwind(move || axum::http::Request::from(request))
        .map_err(|_| malformed("its host or path is not a URL".into()))?;
    let (mut parts, body) = converted.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let path = if raw_path.starts_with('/') {
        raw_path
    } else {
        format!("/{raw_path}")
    };
    let path = percent_encoding::utf8_percent_encode(&path, PATH).to_string();
    parts.uri = format!("{path}{query}")
        .parse()
        .map_err(|e| malformed(format!("path {path:?} ({e})")))?;
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Ok(axum::http::Request::from_parts(parts, body))
}
