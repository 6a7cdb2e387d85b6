//! The HTTP side of intake on localhost: an HTTP request as the HTTP API v2 event API Gateway
//! would send, and a router that hands it to the intake handler. `serve` and the tests use it;
//! it needs no AWS SDK.

use serde_json::{json, Value};
use shared::app::Deps;

/// Turns an HTTP request into the HTTP API v2 event API Gateway would send, with the caller
/// from an `x-user` header standing in for the JWT authorizer's `sub` claim.
pub fn http_api_event(method: &str, path: &str, user: Option<&str>, body: &str) -> Value {
    http_api_event_with_query(method, path, user, &std::collections::BTreeMap::new(), body)
}

/// As [`http_api_event`], with query string parameters.
pub fn http_api_event_with_query(
    method: &str,
    path: &str,
    user: Option<&str>,
    query: &std::collections::BTreeMap<String, String>,
    body: &str,
) -> Value {
    let raw_query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let authorizer = user.map(|u| json!({"jwt": {"claims": {"sub": u}, "scopes": null}}));
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query.join("&"),
        "queryStringParameters": if query.is_empty() { Value::Null } else { json!(query) },
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": authorizer,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "local"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "timeEpoch": 0
        },
        "body": if body.is_empty() { Value::Null } else { json!(body) },
        "isBase64Encoded": false
    })
}

/// The intake handler behind a local HTTP server: `POST /api/batch/jobs`.
pub fn intake_router(deps: Deps) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    let deps = std::sync::Arc::new(deps);
    axum::Router::new().route(
        "/api/batch/jobs",
        post(move |headers: HeaderMap, body: String| {
            let deps = deps.clone();
            async move {
                let user = headers.get("x-user").and_then(|v| v.to_str().ok());
                let answer = intake::handle(
                    &deps,
                    http_api_event("POST", "/api/batch/jobs", user, &body),
                )
                .await;
                let status = answer["statusCode"]
                    .as_u64()
                    .and_then(|s| StatusCode::from_u16(s as u16).ok());
                let body = answer["body"].as_str().unwrap_or_default().to_owned();
                (
                    status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    )
}
