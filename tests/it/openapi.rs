//! The OpenAPI document (`openapi.json`) and the handler agree: every documented route and
//! status code is produced by a real request, every answer validates against the documented
//! schema, and no route answers that the document does not list.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn doc() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json");
    serde_json::from_str(&text).expect("JSON")
}

/// A JSON Schema for one documented response, with the document's components as `$defs`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let defs = doc["components"]["schemas"].clone();
    let text = json!({"$defs": defs, "allOf": [schema]})
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let schema: Value = serde_json::from_str(&text).expect("schema");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn api(method: &str, path: &str, user: Option<&str>, query: Value, body: Option<Value>) -> Value {
    let mut ev = event("intake-http-api-v2.json");
    ev["routeKey"] = json!(format!("{method} {path}"));
    ev["rawPath"] = json!(path);
    ev["requestContext"]["http"]["method"] = json!(method);
    ev["requestContext"]["http"]["path"] = json!(path);
    ev["requestContext"]["authorizer"] = match user {
        Some(u) => json!({"jwt": {"claims": {"sub": u}, "scopes": null}}),
        None => Value::Null,
    };
    set_query(&mut ev, query);
    ev["body"] = body.map(|b| json!(b.to_string())).unwrap_or(Value::Null);
    ev
}

/// The documented response for a code, with a `$ref` to `components/responses` resolved.
fn response(doc: &Value, path: &str, method: &str, code: &str) -> Value {
    let r = &doc["paths"][path][method]["responses"][code];
    match r["$ref"].as_str() {
        Some(name) => doc["components"]["responses"]
            [name.trim_start_matches("#/components/responses/")]
        .clone(),
        None => r.clone(),
    }
}

/// The answer is documented for its code and validates against the documented schema.
fn check_answer(doc: &Value, path: &str, method: &str, answer: &Value) {
    let code = status(answer).to_string();
    let documented = response(doc, path, method, &code);
    assert!(
        documented.is_object(),
        "{method} {path} answered {code}, undocumented: {answer}"
    );
    let schema = &documented["content"]["application/json"]["schema"];
    let errors: Vec<String> = validator(doc, schema)
        .iter_errors(&body(answer))
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {code}: {errors:?} in {answer}"
    );
}

#[tokio::test]
async fn when_the_handler_answers_should_match_the_documented_routes_codes_and_shapes() {
    let doc = doc();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let app = app().await;
    let u = Some(SAMPLE_USER);
    let create = |intent: &str, keys: &[&str]| json!({"intentId": intent, "images": keys});
    let post = |user: Option<&str>, body: Value| {
        api("POST", "/api/batch/jobs", user, Value::Null, Some(body))
    };

    // A finished job to read.
    let accepted = body(&app.intake(post(u, create("doc-1", &SAMPLE_KEYS))).await);
    run(&app).await;
    let job = accepted["jobId"].as_str().expect("jobId").to_owned();
    let job_path = format!("/api/batch/jobs/{job}");
    let results_path = format!("{job_path}/results");
    let missing = "/api/batch/jobs/bj-000000000000000000000000";

    // (documented path, method, the request) for every documented status code.
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "/api/batch/jobs",
            "post",
            post(u, create("doc-2", &SAMPLE_KEYS[..1])),
        ),
        (
            "/api/batch/jobs",
            "post",
            post(u, json!({"intentId": "x/y"})),
        ),
        (
            "/api/batch/jobs",
            "post",
            post(None, create("doc-3", &SAMPLE_KEYS)),
        ),
        (
            "/api/batch/jobs",
            "post",
            post(u, create("doc-1", &SAMPLE_KEYS[..1])),
        ),
        (
            "/api/batch/jobs",
            "post",
            post(u, create("doc-4", &["uploads/user-999/a.png"])),
        ),
        (
            "/api/batch/jobs",
            "post",
            post(
                u,
                json!({"intentId": "doc-5", "images": ["x".repeat(11 * 1024 * 1024)]}),
            ),
        ),
        (
            "/api/batch/jobs",
            "get",
            api("GET", "/api/batch/jobs", u, json!({"limit": "1"}), None),
        ),
        (
            "/api/batch/jobs",
            "get",
            api("GET", "/api/batch/jobs", u, json!({"limit": "0"}), None),
        ),
        (
            "/api/batch/jobs",
            "get",
            api("GET", "/api/batch/jobs", None, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "get",
            api("GET", &job_path, u, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "get",
            api("GET", missing, u, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "get",
            api("GET", &job_path, None, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "delete",
            api("DELETE", &job_path, u, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "delete",
            api("DELETE", missing, u, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}",
            "delete",
            api("DELETE", &job_path, None, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &results_path, u, json!({"limit": "2"}), None),
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &results_path, u, json!({"cursor": "%%%"}), None),
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &results_path, u, json!({"cursor": ""}), None),
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &format!("{missing}/results"), u, Value::Null, None),
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &results_path, None, Value::Null, None),
        ),
        (
            "/api/batch/usage",
            "get",
            api("GET", "/api/batch/usage", u, Value::Null, None),
        ),
        (
            "/api/batch/usage",
            "get",
            api(
                "GET",
                "/api/batch/usage",
                u,
                json!({"from": "2026-12-03", "to": "2026-11-01"}),
                None,
            ),
        ),
        (
            "/api/batch/usage",
            "get",
            api("GET", "/api/batch/usage", None, Value::Null, None),
        ),
    ];
    let mut seen = BTreeSet::new();
    for (path, method, request) in cases {
        let answer = app.intake(request).await;
        let code = status(&answer).to_string();
        let documented = response(&doc, path, method, &code);
        let documented = &documented;
        assert!(
            documented.is_object(),
            "{method} {path} answered {code}, which the document does not list: {answer}"
        );
        let schema = &documented["content"]["application/json"]["schema"];
        let b = body(&answer);
        let errors: Vec<String> = validator(&doc, schema)
            .iter_errors(&b)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {code}: {errors:?} in {b}"
        );
        seen.insert((path.to_owned(), method.to_owned(), code));
    }
    // 429: a user over the per-user limit of batches in progress.
    let limited = app_with(|o| o.settings.max_open_intents_per_user = 1).await;
    assert_eq!(
        status(&limited.intake(post(u, create("lim-1", &SAMPLE_KEYS))).await),
        202
    );
    limited
        .manual_clock()
        .expect("manual")
        .advance(chrono::Duration::seconds(3));
    let answer = limited
        .intake(post(u, create("lim-2", &SAMPLE_KEYS[..1])))
        .await;
    assert_eq!(status(&answer), 429, "{answer}");
    assert!(answer["headers"]["retry-after"].is_string(), "{answer}");
    check_answer(&doc, "/api/batch/jobs", "post", &answer);
    seen.insert(("/api/batch/jobs".into(), "post".into(), "429".into()));
    // 503: the announce fails.
    app.bus.fail_next_publishes(1);
    let answer = app.intake(post(u, create("doc-9", &SAMPLE_KEYS))).await;
    assert_eq!(status(&answer), 503);
    check_answer(&doc, "/api/batch/jobs", "post", &answer);
    seen.insert(("/api/batch/jobs".into(), "post".into(), "503".into()));
    // 503 on the reads: the store is unreachable.
    for (path, method, request, point) in [
        (
            "/api/batch/jobs",
            "get",
            api("GET", "/api/batch/jobs", u, Value::Null, None),
            "store.list_by_user",
        ),
        (
            "/api/batch/jobs/{jobId}",
            "get",
            api("GET", &job_path, u, Value::Null, None),
            "store.get_by_job_id",
        ),
        (
            "/api/batch/jobs/{jobId}",
            "delete",
            api("DELETE", &job_path, u, Value::Null, None),
            "store.get_by_job_id",
        ),
        (
            "/api/batch/jobs/{jobId}/results",
            "get",
            api("GET", &results_path, u, Value::Null, None),
            "store.get_by_job_id",
        ),
        (
            "/api/batch/usage",
            "get",
            api("GET", "/api/batch/usage", u, Value::Null, None),
            "store.list_by_user",
        ),
    ] {
        let plan =
            shared::adapters::embedded::faults::FaultPlan::crash_at(&format!("{point}:before"), 1);
        let broken = app_with(|o| o.faults = Some(plan)).await;
        let answer = broken.intake(request).await;
        assert_eq!(status(&answer), 503, "{method} {path}: {answer}");
        assert_eq!(answer["headers"]["retry-after"], json!("5"), "{answer}");
        check_answer(&doc, path, method, &answer);
        seen.insert((path.into(), method.into(), "503".into()));
    }

    // Every documented (path, method, code) was produced.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            for code in op["responses"].as_object().expect("responses").keys() {
                documented.insert((path.clone(), method.clone(), code.clone()));
            }
        }
    }
    let unexercised: Vec<_> = documented.difference(&seen).collect();
    assert!(
        unexercised.is_empty(),
        "documented but never produced: {unexercised:?}"
    );

    // Undocumented methods are refused, not served.
    let answer = app
        .intake(api("PUT", "/api/batch/jobs", u, Value::Null, None))
        .await;
    assert_eq!(status(&answer), 405);
    assert_eq!(
        answer["headers"]["allow"],
        json!("GET,HEAD,POST"),
        "{answer}"
    );
    assert_eq!(body(&answer)["error"], json!("method_not_allowed"));
    let answer = app
        .intake(api("PATCH", &job_path, u, Value::Null, None))
        .await;
    assert_eq!(status(&answer), 405);
    assert_eq!(
        answer["headers"]["allow"],
        json!("GET,HEAD,DELETE"),
        "{answer}"
    );
    // An undocumented path is a JSON 404.
    let answer = app
        .intake(api("GET", "/api/other", u, Value::Null, None))
        .await;
    assert_eq!(status(&answer), 404);
    assert_eq!(body(&answer)["error"], json!("not_found"));
}

#[test]
fn when_a_client_sends_the_documented_request_should_match_the_create_schema() {
    let doc = doc();
    let body: Value = serde_json::from_str(
        event("intake-http-api-v2.json")["body"]
            .as_str()
            .expect("body"),
    )
    .expect("JSON");
    let v = validator(&doc, &doc["components"]["schemas"]["CreateBatch"]);
    let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}
