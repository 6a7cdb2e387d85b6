//! intake: the front door. Accepts an API Gateway REST (v1) proxy event, an HTTP API (v2)
//! event, or a direct invoke; validates at the boundary; records the intent once; answers
//! 202 `{jobId, intentId, statusUrl, estimatedDuration, cached}`. It also serves
//! `GET /api/batch/jobs/{jobId}`, the `statusUrl`. Errors are mapped to HTTP status codes here
//! and nowhere else.

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use base64::Engine as _;
use serde_json::{json, Value};
use shared::app::cancel::cancel;
use shared::app::intake::{accept, parse_payload, parse_request, Accepted, Caller, IntakeError};
use shared::app::status::{job_status, list_jobs, list_results};
use shared::app::uploads::{index_object_created, nightly, Indexed};
use shared::app::Deps;
use shared::domain::ids::{JobId, UserId};
use shared::domain::status::IntentStatus;

/// The claim that names the caller in a JWT / Cognito authorizer.
pub const USER_CLAIM: &str = "sub";

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

    fn is_http(&self) -> bool {
        matches!(self, Self::RestV1(_) | Self::HttpV2(_))
    }

    /// A query string parameter of an API request.
    fn query(&self, name: &str) -> Option<String> {
        match self {
            Self::RestV1(r) => r.query_string_parameters.first(name).map(str::to_owned),
            Self::HttpV2(r) => r.query_string_parameters.first(name).map(str::to_owned),
            _ => None,
        }
    }

    /// The caller named by the authorizer (API events only).
    fn caller(&self) -> Result<UserId, IntakeError> {
        match self {
            Self::RestV1(r) => user_from_authorizer(Some(&r.request_context.authorizer)),
            Self::HttpV2(r) => user_from_authorizer(r.request_context.authorizer.as_ref()),
            _ => Err(IntakeError::invalid("event", "this route is an API route")),
        }
    }

    /// (method, path) of an API request.
    fn route(&self) -> Option<(String, String)> {
        match self {
            Self::RestV1(r) => Some((
                r.http_method.to_string(),
                r.path.clone().unwrap_or_default(),
            )),
            Self::HttpV2(r) => Some((
                r.request_context.http.method.to_string(),
                r.raw_path.clone().unwrap_or_default(),
            )),
            _ => None,
        }
    }
}

/// The jobId of `/api/batch/jobs/{jobId}`, if that is the path.
fn job_path(path: &str) -> Option<String> {
    let id = path
        .trim_end_matches('/')
        .strip_prefix("/api/batch/jobs/")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_owned())
}

/// The jobId of `/api/batch/jobs/{jobId}/results`, if that is the path.
fn results_path(path: &str) -> Option<String> {
    let rest = path.trim_end_matches('/').strip_suffix("/results")?;
    job_path(rest)
}

fn is_collection(path: &str) -> bool {
    path.trim_end_matches('/') == "/api/batch/jobs"
}

/// The caller's id from an authorizer: JWT claims (HTTP API), or Cognito user-pool claims
/// (REST API, under `claims`), or a Lambda authorizer's context.
fn user_from_authorizer(auth: Option<&ApiGatewayRequestAuthorizer>) -> Result<UserId, IntakeError> {
    let claim = auth.and_then(|a| {
        a.jwt
            .as_ref()
            .and_then(|j| j.claims.get(USER_CLAIM).cloned())
            .or_else(|| {
                a.fields
                    .get("claims")
                    .and_then(|c| c.get(USER_CLAIM))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .or_else(|| {
                a.fields
                    .get(USER_CLAIM)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
    });
    let raw = claim.ok_or_else(|| {
        IntakeError::Unauthorized(format!("no `{USER_CLAIM}` claim from the authorizer"))
    })?;
    UserId::parse(&raw).map_err(|e| {
        IntakeError::Unauthorized(format!(
            "the `{USER_CLAIM}` claim is not a valid user id: {e}"
        ))
    })
}

fn body_bytes(body: Option<&str>, base64_encoded: bool) -> Result<Vec<u8>, IntakeError> {
    let body = body.unwrap_or_default();
    if base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| {
                IntakeError::invalid(
                    "body",
                    format!("is marked base64 but does not decode ({e})"),
                )
            })
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn header<'a>(headers: &'a aws_lambda_events::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn not_found(raw_id: &str) -> (u16, Value) {
    (
        404,
        json!({"error": "not_found", "message": format!("no job {raw_id}")}),
    )
}

/// `GET /api/batch/jobs/{jobId}` for the authorized caller: 200 with the job, or 404 (also
/// for another user's job, so no existence leaks).
/// A status code and its JSON body.
type Answer = (u16, Value);

/// The caller and the job a `/api/batch/jobs/{jobId}…` route names; `Err(answer)` is the 404
/// for an id that cannot be one of ours.
fn job_route(
    event: &IntakeEvent,
    raw_id: &str,
) -> Result<Result<(UserId, JobId), Answer>, IntakeError> {
    let caller = event.caller()?;
    Ok(JobId::parse(raw_id)
        .map(|job| (caller, job))
        .map_err(|_| not_found(raw_id)))
}

async fn status(
    deps: &Deps,
    event: &IntakeEvent,
    raw_id: &str,
) -> Result<(u16, Value), IntakeError> {
    let (caller, job_id) = match job_route(event, raw_id)? {
        Ok(ids) => ids,
        Err(answer) => return Ok(answer),
    };
    Ok(view_answer(
        200,
        job_status(deps, &caller, &job_id).await?,
        raw_id,
    ))
}

/// The job with `code`, or 404 when there is none for this caller.
fn view_answer(code: u16, view: Option<shared::app::status::JobView>, raw_id: &str) -> Answer {
    match view {
        Some(view) => (code, serde_json::to_value(view).unwrap_or_default()),
        None => not_found(raw_id),
    }
}

/// `DELETE /api/batch/jobs/{jobId}`: cancel. 202 with the job as it stands (a running job
/// ends STOPPED once Bedrock stops it), 404 for a missing or another user's job.
async fn cancel_route(
    deps: &Deps,
    event: &IntakeEvent,
    raw_id: &str,
) -> Result<(u16, Value), IntakeError> {
    let (caller, job_id) = match job_route(event, raw_id)? {
        Ok(ids) => ids,
        Err(answer) => return Ok(answer),
    };
    Ok(view_answer(
        202,
        cancel(deps, &caller, &job_id).await?,
        raw_id,
    ))
}

/// `GET /api/batch/jobs/{jobId}/results?limit=&cursor=`: per-image results, paginated.
async fn results_route(
    deps: &Deps,
    event: &IntakeEvent,
    raw_id: &str,
) -> Result<(u16, Value), IntakeError> {
    let (caller, job_id) = match job_route(event, raw_id)? {
        Ok(ids) => ids,
        Err(answer) => return Ok(answer),
    };
    let limit = page_limit(event, 100, 1000)?;
    let cursor = event.query("cursor");
    match list_results(deps, &caller, &job_id, limit, cursor.as_deref()).await? {
        None => Ok(not_found(raw_id)),
        Some(Ok(page)) => Ok((200, serde_json::to_value(page).unwrap_or_default())),
        Some(Err(e)) => Err(IntakeError::invalid("cursor", e.to_string())),
    }
}

/// `limit` from the query: `default` when absent, else 1 to `max`.
fn page_limit(event: &IntakeEvent, default: usize, max: usize) -> Result<usize, IntakeError> {
    match event.query("limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                IntakeError::invalid("limit", format!("must be a whole number from 1 to {max}"))
            }),
    }
}

/// `GET /api/batch/jobs?status=&limit=&cursor=`: the caller's own jobs, newest first.
async fn list_route(deps: &Deps, event: &IntakeEvent) -> Result<(u16, Value), IntakeError> {
    let caller = event.caller()?;
    let status = event
        .query("status")
        .map(|s| {
            s.parse::<IntentStatus>().map_err(|_| {
                let all: Vec<&str> = IntentStatus::ALL.iter().map(|s| s.as_str()).collect();
                IntakeError::invalid("status", format!("must be one of {}", all.join(", ")))
            })
        })
        .transpose()?;
    let limit = page_limit(event, 20, 100)?;
    let cursor = event.query("cursor");
    match list_jobs(deps, &caller, status, limit, cursor.as_deref()).await? {
        Ok(page) => Ok((200, serde_json::to_value(page).unwrap_or_default())),
        Err(e) => Err(IntakeError::invalid("cursor", e.to_string())),
    }
}

async fn run(deps: &Deps, event: &IntakeEvent) -> Result<(u16, Value), IntakeError> {
    if let Some((method, path)) = event.route() {
        let method = method.to_ascii_uppercase();
        match (method.as_str(), job_path(&path), is_collection(&path)) {
            ("GET", Some(id), _) => return status(deps, event, &id).await,
            ("GET", None, false) if results_path(&path).is_some() => {
                let id = results_path(&path).unwrap_or_default();
                return results_route(deps, event, &id).await;
            }
            ("DELETE", Some(id), _) => return cancel_route(deps, event, &id).await,
            ("GET", None, true) => return list_route(deps, event).await,
            ("POST", None, _) => {}
            ("GET", ..) => {
                return Ok((
                    404,
                    json!({"error": "not_found", "message": format!("no route GET {path}")}),
                ))
            }
            _ => {
                return Ok((
                    405,
                    json!({"error": "method_not_allowed", "message": format!("{method} {path} is not supported")}),
                ))
            }
        }
    }
    let new = match event {
        IntakeEvent::RestV1(req) => {
            let caller = Caller::User(user_from_authorizer(Some(&req.request_context.authorizer))?);
            let body = body_bytes(req.body.as_deref(), req.is_base64_encoded)?;
            let trace = header(&req.headers, "x-amzn-trace-id")
                .or(req.request_context.request_id.as_deref());
            parse_request(&deps.settings, &caller, &body, trace)?
        }
        IntakeEvent::HttpV2(req) => {
            let caller = Caller::User(user_from_authorizer(
                req.request_context.authorizer.as_ref(),
            )?);
            let body = body_bytes(req.body.as_deref(), req.is_base64_encoded)?;
            let trace = header(&req.headers, "x-amzn-trace-id")
                .or(req.request_context.request_id.as_deref());
            parse_request(&deps.settings, &caller, &body, trace)?
        }
        IntakeEvent::Direct(payload) => {
            let trace = payload
                .get("traceId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut payload = payload.clone();
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
        } => {
            return match index_object_created(deps, bucket, key, *size, etag).await {
                Ok(Indexed::Recorded(u)) => Ok((
                    200,
                    json!({"indexed": true, "userId": u.user_id, "day": u.day, "key": u.key}),
                )),
                Ok(Indexed::Ignored(reason)) => {
                    tracing::info!(bucket, key, reason, "object not indexed");
                    Ok((200, json!({"indexed": false, "reason": reason})))
                }
                Err(e) => Err(stage_error(e)),
            };
        }
        IntakeEvent::Nightly(day) => {
            let day =
                day.unwrap_or_else(|| deps.clock.now().date_naive().pred_opt().unwrap_or_default());
            return match nightly(deps, day).await {
                Ok(r) => Ok((
                    200,
                    json!({"day": day, "users": r.users, "created": r.created, "existing": r.existing, "refused": r.refused}),
                )),
                Err(e) => Err(stage_error(e)),
            };
        }
    };
    let accepted: Accepted = accept(deps, new).await?;
    Ok((202, serde_json::to_value(&accepted).unwrap_or_default()))
}

/// A stage failure of the index or the nightly run: retryable ones are 503 (the invoker's
/// retry policy and DLQ take over), permanent ones are refused.
fn stage_error(e: shared::app::StageError) -> IntakeError {
    match e {
        shared::app::StageError::Retryable(p) => IntakeError::Unavailable(p),
        shared::app::StageError::Permanent(m) => IntakeError::invalid("event", m),
    }
}

/// The one place errors become status codes and client messages. Internal errors are logged
/// with their chain and answered without internals.
fn error_body(err: &IntakeError) -> Value {
    match err {
        IntakeError::Invalid { .. } => shared::metrics::rejected("validation"),
        IntakeError::Unauthorized(_) => shared::metrics::rejected("unauthorized"),
        IntakeError::KeyReused(_) => shared::metrics::rejected("intent_id_reused"),
        IntakeError::Unavailable(_) => shared::metrics::rejected("unavailable"),
    }
    match err {
        IntakeError::Invalid { field, message } => {
            json!({"error": "validation_failed", "field": field, "message": format!("{field}: {message}")})
        }
        IntakeError::Unauthorized(m) => json!({"error": "unauthorized", "message": m}),
        IntakeError::KeyReused(id) => json!({
            "error": "intent_id_reused",
            "field": "intentId",
            "message": format!("intentId {id} was already used for a different request; use a new intentId for a new action"),
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

/// Handles one invocation; the answer mirrors the door it came through.
pub async fn handle(deps: &Deps, event: Value) -> Value {
    let api = event.get("requestContext").is_some();
    let (status, body, http) = match IntakeEvent::from_value(event) {
        Err(e) => (e.status_code(), error_body(&e), api),
        Ok(event) => {
            let http = event.is_http();
            match run(deps, &event).await {
                Ok((status, body)) => (status, body, http),
                Err(e) => {
                    if !matches!(e, IntakeError::Unavailable(_)) {
                        tracing::info!(status = e.status_code(), error = %e, "request refused");
                    }
                    (e.status_code(), error_body(&e), http)
                }
            }
        }
    };
    if http {
        let mut headers = json!({"content-type": "application/json"});
        if status == 503 {
            headers["retry-after"] = json!("5");
        }
        json!({"statusCode": status, "headers": headers, "body": body.to_string(), "isBase64Encoded": false})
    } else {
        let mut out = body;
        if let Some(obj) = out.as_object_mut() {
            obj.insert("statusCode".into(), json!(status));
        }
        out
    }
}
