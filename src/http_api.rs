//! HTTP API v2 events as API Gateway would send them to the intake Lambda, with the caller in
//! the JWT authorizer's claims: the tests and benches drive the Lambda door with them.

use serde_json::{json, Value};

/// The HTTP API v2 event API Gateway would send for a request, with `user` as the JWT
/// authorizer's `sub` claim (none: no authorizer context).
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
    let raw_query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
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

/// A query component, percent-encoded as a browser would.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
