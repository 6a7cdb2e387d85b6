//! The Bedrock batch control plane over HTTP, for the SDK to call through
//! `AWS_ENDPOINT_URL_BEDROCK` (moto has no Bedrock batch API). It serves the four REST routes
//! of the `bedrock` service model (2023-04-20) with restJson1 errors, on top of the same job
//! logic the embedded backend uses; a background task advances the jobs.
//!
//! | route | operation |
//! | --- | --- |
//! | `POST /model-invocation-job` | CreateModelInvocationJob |
//! | `GET /model-invocation-job/{jobIdentifier}` | GetModelInvocationJob |
//! | `POST /model-invocation-job/{jobIdentifier}/stop` | StopModelInvocationJob |
//! | `GET /model-invocation-jobs?statusEquals=&nameContains=` | ListModelInvocationJobs |
//! | `POST /model/{modelId}/invoke` | InvokeModel (`bedrock-runtime`, the on-demand path) |
//! | `POST /_emulator/create-faults` | test hook: the next creates fail (`["Transient", …]`) |
//! | `GET /_emulator/jobs` | test hook: how many jobs exist |

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::adapters::embedded::bedrock_emulator::BedrockEmulator;
use shared::domain::bedrock::{CreateJobRequest, JobInfo, S3Uri};
use shared::domain::ids::{BedrockJobArn, ModelId};
use shared::domain::status::BedrockJobStatus;
use shared::ports::{BatchInference, ErrorKind, PortError};
use std::sync::Arc;
use std::time::Duration;

type Shared = Arc<BedrockEmulator>;

struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.1));
        (self.0, headers, Json(json!({"message": self.2}))).into_response()
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        let (status, code) = match e.kind {
            ErrorKind::Validation => (StatusCode::BAD_REQUEST, "ValidationException"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            ErrorKind::Conflict => (StatusCode::BAD_REQUEST, "ConflictException"),
            ErrorKind::QuotaExceeded => (StatusCode::BAD_REQUEST, "ServiceQuotaExceededException"),
            ErrorKind::Throttled => (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException"),
            ErrorKind::Transient | ErrorKind::Unexpected => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException")
            }
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "AccessDeniedException"),
        };
        ApiError(status, code, e.message)
    }
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, "ValidationException", msg.into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    job_name: String,
    role_arn: String,
    #[serde(default)]
    client_request_token: Option<String>,
    model_id: String,
    input_data_config: Value,
    output_data_config: Value,
    #[serde(default)]
    timeout_duration_in_hours: Option<u32>,
    #[serde(default)]
    tags: Vec<TagBody>,
}

#[derive(Deserialize)]
struct TagBody {
    key: String,
    value: String,
}

fn uri_at(v: &Value, path: &[&str]) -> Result<S3Uri, ApiError> {
    let raw = path
        .iter()
        .try_fold(v, |acc, k| acc.get(*k))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{} is required", path.join("."))))?;
    S3Uri::parse(raw).map_err(|e| invalid(format!("{}: {e}", path.join("."))))
}

async fn create(
    State(emu): State<Shared>,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    let req = CreateJobRequest {
        job_name: body.job_name,
        client_request_token: body.client_request_token.unwrap_or_else(uuid_token),
        role_arn: body.role_arn,
        model_id: ModelId::parse(&body.model_id).map_err(|e| invalid(e.rule))?,
        input: uri_at(&body.input_data_config, &["s3InputDataConfig", "s3Uri"])?,
        output: uri_at(&body.output_data_config, &["s3OutputDataConfig", "s3Uri"])?,
        timeout_hours: body.timeout_duration_in_hours.unwrap_or(72),
        tags: body.tags.into_iter().map(|t| (t.key, t.value)).collect(),
    };
    let arn = emu.create_job(&req).await?;
    Ok(Json(json!({"jobArn": arn})))
}

fn uuid_token() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn describe(emu: &BedrockEmulator, info: &JobInfo) -> Result<Value, ApiError> {
    let (role, token, timeout) = emu.job_extras(&info.arn)?;
    let mut v = json!({
        "jobArn": info.arn,
        "jobName": info.job_name,
        "modelId": info.model_id,
        "clientRequestToken": token,
        "roleArn": role,
        "status": info.status.as_str(),
        "submitTime": info.submitted_at.to_rfc3339(),
        "lastModifiedTime": info.last_modified_at.to_rfc3339(),
        "inputDataConfig": {"s3InputDataConfig": {"s3InputFormat": "JSONL", "s3Uri": info.input.to_string()}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": info.output.to_string()}},
        "timeoutDurationInHours": timeout,
    });
    if let Some(m) = &info.failure_message {
        v["message"] = json!(m);
    }
    if let Some(end) = info.ended_at {
        v["endTime"] = json!(end.to_rfc3339());
    }
    if let Some(exp) = info.expires_at {
        v["jobExpirationTime"] = json!(exp.to_rfc3339());
    }
    if let Some(p) = info.progress {
        v["totalRecordCount"] = json!(p.total_record_count);
        v["processedRecordCount"] = json!(p.processed_record_count);
        v["successRecordCount"] = json!(p.success_record_count);
        v["errorRecordCount"] = json!(p.error_record_count);
    }
    Ok(v)
}

fn parse_arn(id: &str) -> Result<BedrockJobArn, ApiError> {
    BedrockJobArn::parse(id).map_err(|_| {
        ApiError(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("no model invocation job {id}"),
        )
    })
}

async fn get_job(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = emu.get_job(&parse_arn(&id)?).await?;
    Ok(Json(describe(&emu, &info)?))
}

async fn stop_job(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    emu.stop_job(&parse_arn(&id)?).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    #[serde(default)]
    status_equals: Option<String>,
    #[serde(default)]
    name_contains: Option<String>,
}

async fn list_jobs(
    State(emu): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q
        .status_equals
        .map(|s| s.parse::<BedrockJobStatus>().map_err(invalid))
        .transpose()?;
    let jobs = emu.list_jobs(status).await?;
    let summaries = jobs
        .iter()
        .filter(|j| {
            q.name_contains
                .as_ref()
                .is_none_or(|n| j.job_name.contains(n.as_str()))
        })
        .map(|j| describe(&emu, j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"invocationJobSummaries": summaries})))
}

async fn create_faults(
    State(emu): State<Shared>,
    Json(kinds): Json<Vec<String>>,
) -> Result<Json<Value>, ApiError> {
    let faults = kinds
        .iter()
        .map(|k| match k.as_str() {
            "Transient" => Ok(ErrorKind::Transient),
            "Throttled" => Ok(ErrorKind::Throttled),
            "Forbidden" => Ok(ErrorKind::Forbidden),
            "NotFound" => Ok(ErrorKind::NotFound),
            "QuotaExceeded" => Ok(ErrorKind::QuotaExceeded),
            "Validation" => Ok(ErrorKind::Validation),
            other => Err(invalid(format!("unknown fault {other}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    emu.inject_create_faults(faults);
    Ok(Json(json!({"queued": kinds.len()})))
}

/// Bedrock Runtime's InvokeModel: the same deterministic answer a batch record gets.
async fn invoke_model(
    Path(model): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let model = ModelId::parse(&model).map_err(|e| invalid(e.rule))?;
    if body.get("messages").and_then(Value::as_array).is_none() {
        return Err(invalid("body has no messages"));
    }
    Ok(Json(
        shared::adapters::embedded::bedrock_emulator::emulated_output(model.as_str(), &body),
    ))
}

async fn job_count(State(emu): State<Shared>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"jobs": emu.job_count()?})))
}

pub fn router(emulator: Shared) -> Router {
    Router::new()
        .route("/model-invocation-job", post(create))
        .route("/model-invocation-job/{id}", get(get_job))
        .route("/model-invocation-job/{id}/stop", post(stop_job))
        .route("/model-invocation-jobs", get(list_jobs))
        .route("/model/{model}/invoke", post(invoke_model))
        .route("/_emulator/create-faults", post(create_faults))
        .route("/_emulator/jobs", get(job_count))
        .with_state(emulator)
}

/// Serves on `listener` and advances jobs every `tick`, until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emulator: Shared,
    tick: Duration,
) -> std::io::Result<()> {
    let ticker = emulator.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = ticker.tick().await {
                tracing::warn!(error = %e, "emulator tick failed");
            }
            tokio::time::sleep(tick).await;
        }
    });
    axum::serve(listener, router(emulator)).await
}
