//! Intake's HTTP API as one axum [`Router`]: the Lambda runs it under `lambda_http`'s adapter
//! ([`crate::http`]) and `serve` serves the very same router on localhost. Its refusals are
//! [`ApiError`]s, which [`crate::answer`] turns into status codes and JSON bodies.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/batch/jobs` | 202 accepted (or the stored answer of a replay) |
//! | `GET /api/batch/jobs?status=&limit=&cursor=` | 200 the caller's jobs, newest first |
//! | `GET /api/batch/jobs/{jobId}` | 200 the job, 404 if not the caller's |
//! | `DELETE /api/batch/jobs/{jobId}` | 202 cancel |
//! | `GET /api/batch/jobs/{jobId}/results?limit=&cursor=&needsReview=` | 200 per-image results |
//! | `GET /api/batch/usage?from=&to=` | 200 the caller's images, tokens and USD per day |
//!
//! Any other method on these paths is a JSON 405 with `Allow`; any other path a JSON 404; a
//! body over [`MAX_BODY_BYTES`] (API Gateway's 10 MB) a JSON 413.

use crate::answer::{to_json, ApiError};
use crate::auth::Auth;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::{request::Parts, HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use shared::app::cancel::cancel;
use shared::app::intake::{
    accept, parse_request, Caller as IntakeCaller, IntakeError, MAX_BODY_BYTES,
};
use shared::app::status::{job_status, list_jobs, list_results};
use shared::app::Deps;
use shared::domain::ids::{JobId, UserId};
use shared::domain::status::IntentStatus;
use std::sync::Arc;

/// What every route shares.
#[derive(Clone, Debug)]
pub struct Api {
    pub deps: Arc<Deps>,
    pub auth: Auth,
}

/// The HTTP API over `deps`, learning callers through `auth`.
pub fn router(deps: Deps, auth: Auth) -> Router {
    let state = Api {
        deps: Arc::new(deps),
        auth,
    };
    Router::new()
        .route(
            "/api/batch/jobs",
            get(list_route).post(create).fallback(method_not_allowed),
        )
        .route(
            "/api/batch/jobs/{job_id}",
            get(status_route)
                .delete(cancel_route)
                .fallback(method_not_allowed),
        )
        .route(
            "/api/batch/jobs/{job_id}/results",
            get(results_route).fallback(method_not_allowed),
        )
        .route(
            "/api/batch/usage",
            get(usage_route).fallback(method_not_allowed),
        )
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The authenticated caller of a route.
pub struct Caller(pub UserId);

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        Ok(Self(api.auth.caller(parts)?))
    }
}

async fn no_route() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The trace id of a request: X-Ray's header, else API Gateway's request id.
fn trace_id(
    headers: &HeaderMap,
    parts: Option<&lambda_http::request::RequestContext>,
) -> Option<String> {
    use lambda_http::request::RequestContext;
    if let Some(t) = headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()) {
        return Some(t.to_owned());
    }
    match parts? {
        RequestContext::ApiGatewayV1(c) => c.request_id.clone(),
        RequestContext::ApiGatewayV2(c) => c.request_id.clone(),
        _ => None,
    }
}

/// `POST /api/batch/jobs`: validate, record once, announce; 202.
async fn create(
    State(api): State<Api>,
    Caller(user): Caller,
    context: Option<axum::Extension<lambda_http::request::RequestContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        _ => IntakeError::invalid("body", format!("could not be read ({e})")).into(),
    })?;
    let trace = trace_id(&headers, context.as_ref().map(|c| &c.0));
    let new = parse_request(
        &api.deps.settings,
        &IntakeCaller::User(user),
        &body,
        trace.as_deref(),
    )?;
    let accepted = accept(&api.deps, new).await?;
    Ok((StatusCode::ACCEPTED, Json(to_json(&accepted)?)))
}

/// The job id of a `/api/batch/jobs/{jobId}…` path; anything that cannot be one of ours is
/// the same 404 as another user's job, so nothing about existence leaks.
fn job_id(path: Result<Path<String>, PathRejection>) -> Result<JobId, ApiError> {
    let raw = path.map(|Path(raw)| raw).unwrap_or_default();
    JobId::parse(&raw).map_err(|_| ApiError::NotFound(format!("no job {raw}")))
}

fn found(view: Option<impl serde::Serialize>, job: &JobId) -> Result<Value, ApiError> {
    match view {
        Some(view) => Ok(to_json(&view)?),
        None => Err(ApiError::NotFound(format!("no job {job}"))),
    }
}

/// `GET /api/batch/jobs/{jobId}`: 200 with the job, or 404 (also for another user's job).
async fn status_route(
    State(api): State<Api>,
    Caller(user): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let job = job_id(path)?;
    Ok(Json(found(
        job_status(&api.deps, &user, &job).await?,
        &job,
    )?))
}

/// `DELETE /api/batch/jobs/{jobId}`: cancel. 202 with the job as it stands (a running job
/// ends STOPPED once Bedrock stops it), 404 for a missing or another user's job.
async fn cancel_route(
    State(api): State<Api>,
    Caller(user): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let job = job_id(path)?;
    let view = cancel(&api.deps, &user, &job).await?;
    Ok((StatusCode::ACCEPTED, Json(found(view, &job)?)))
}

/// Query parameters, the first value of each name kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn from(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Self, ApiError> {
        query.map(|Query(pairs)| Self(pairs)).map_err(|e| {
            IntakeError::invalid("query", format!("must be a URL-encoded query ({e})")).into()
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit`: `default` when absent, else a whole number from 1 to `max`.
    fn limit(&self, default: usize, max: usize) -> Result<usize, IntakeError> {
        match self.get("limit") {
            None => Ok(default),
            Some(raw) => (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()))
                .then(|| raw.parse::<usize>().ok())
                .flatten()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    IntakeError::invalid("limit", format!("must be a whole number from 1 to {max}"))
                }),
        }
    }

    /// `cursor`, if given; an empty or malformed one is refused when it is decoded, as the
    /// document's pattern says.
    fn cursor(&self) -> Option<&str> {
        self.get("cursor")
    }

    /// `needsReview`: absent, `true` or `false`.
    fn needs_review(&self) -> Result<Option<bool>, IntakeError> {
        match self.get("needsReview") {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(IntakeError::invalid("needsReview", "must be true or false")),
        }
    }
}

/// `GET /api/batch/jobs/{jobId}/results?limit=&cursor=&needsReview=`: per-image results,
/// paginated; with `needsReview`, only those whose answer does (or does not) need review.
async fn results_route(
    State(api): State<Api>,
    Caller(user): Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let job = job_id(path)?;
    let params = Params::from(query)?;
    let limit = params.limit(100, 1000)?;
    let filter = params.needs_review()?;
    let page = list_results(&api.deps, &user, &job, (limit, params.cursor()), filter).await?;
    Ok(Json(to_json(&page)?))
}

/// `GET /api/batch/jobs?status=&limit=&cursor=`: the caller's own jobs, newest first.
async fn list_route(
    State(api): State<Api>,
    Caller(user): Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::from(query)?;
    let status = params
        .get("status")
        .map(|s| {
            s.parse::<IntentStatus>().map_err(|_| {
                let all: Vec<&str> = IntentStatus::ALL.iter().map(|s| s.as_str()).collect();
                IntakeError::invalid("status", format!("must be one of {}", all.join(", ")))
            })
        })
        .transpose()?;
    let limit = params.limit(20, 100)?;
    let page = list_jobs(&api.deps, &user, status, limit, params.cursor()).await?;
    Ok(Json(to_json(&page)?))
}

/// A `YYYY-MM-DD` query parameter, `default` when absent.
fn day_param(
    params: &Params,
    name: &str,
    default: chrono::NaiveDate,
) -> Result<chrono::NaiveDate, IntakeError> {
    match params.get(name) {
        None => Ok(default),
        Some(raw) => shared::app::intake::parse_day(raw)
            .ok_or_else(|| IntakeError::invalid(name, "must be a date as YYYY-MM-DD")),
    }
}

/// `GET /api/batch/usage?from=&to=`: the caller's images, tokens and USD per UTC day, what
/// was paid against all-batch and all-on-demand. `to` defaults to today (within the days
/// `from` may span), `from` to `to`; at most [`shared::app::usage::MAX_DAYS`] days.
async fn usage_route(
    State(api): State<Api>,
    Caller(user): Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    use shared::app::usage::{user_usage, UsageReport, MAX_DAYS};
    let params = Params::from(query)?;
    let today = api.deps.clock.now().date_naive();
    // Without `to`: today, kept within the range `from` allows (so `from` alone is a range).
    let from_only = day_param(&params, "from", today)?;
    let open_end = today.clamp(
        from_only,
        from_only + chrono::Days::new(MAX_DAYS as u64 - 1),
    );
    let to = day_param(&params, "to", open_end)?;
    let from = day_param(&params, "from", to)?;
    if from > to {
        return Err(IntakeError::invalid("from", "must not be after to").into());
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(IntakeError::invalid(
            "to",
            format!("must be at most {MAX_DAYS} days from from"),
        )
        .into());
    }
    let days = user_usage(&api.deps, &user, from, to).await?;
    Ok(Json(to_json(&UsageReport::new(&api.deps, from, to, days))?))
}
