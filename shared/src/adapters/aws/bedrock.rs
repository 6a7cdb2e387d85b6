//! Bedrock adapter: Create/Get/Stop/List model invocation jobs. ServiceQuotaExceeded and
//! throttling come back as retryable kinds ("later", never "failed"); validation does not.

use super::classify;
use crate::domain::bedrock::{CreateJobRequest, JobInfo, S3Uri};
use crate::domain::ids::{BedrockJobArn, ModelId};
use crate::domain::status::BedrockJobStatus;
use crate::ports::{BatchInference, ErrorKind, PortError};
use async_trait::async_trait;
use aws_sdk_bedrock::types::{
    ModelInvocationJobInputDataConfig, ModelInvocationJobOutputDataConfig,
    ModelInvocationJobS3InputDataConfig, ModelInvocationJobS3OutputDataConfig,
    ModelInvocationJobStatus, S3InputFormat, Tag,
};
use aws_sdk_bedrock::Client;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct BedrockBatch {
    client: Client,
}

impl BedrockBatch {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn build_err(e: impl std::error::Error + Send + Sync + 'static) -> PortError {
    PortError::with_source(ErrorKind::Unexpected, "building a Bedrock request", e)
}

fn bad_answer(what: &str) -> PortError {
    PortError::new(
        ErrorKind::Unexpected,
        format!("Bedrock answered without a valid {what}"),
    )
}

fn to_chrono(t: Option<&aws_sdk_bedrock::primitives::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default()
}

fn status_of(s: Option<&ModelInvocationJobStatus>) -> Result<BedrockJobStatus, PortError> {
    let raw = s.map(|s| s.as_str()).unwrap_or("Submitted");
    raw.parse()
        .map_err(|e: String| PortError::new(ErrorKind::Unexpected, e))
}

fn input_uri(c: Option<&ModelInvocationJobInputDataConfig>) -> Result<S3Uri, PortError> {
    match c {
        Some(ModelInvocationJobInputDataConfig::S3InputDataConfig(s3)) => {
            S3Uri::parse(s3.s3_uri()).map_err(|_| bad_answer("input S3 URI"))
        }
        _ => Err(bad_answer("input config")),
    }
}

fn output_uri(c: Option<&ModelInvocationJobOutputDataConfig>) -> Result<S3Uri, PortError> {
    match c {
        Some(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(s3)) => {
            S3Uri::parse(s3.s3_uri()).map_err(|_| bad_answer("output S3 URI"))
        }
        _ => Err(bad_answer("output config")),
    }
}

/// The record counts `GetModelInvocationJob` returns, when it returns any (botocore's
/// `GetModelInvocationJobResponse`: totalRecordCount, processedRecordCount, successRecordCount,
/// errorRecordCount).
fn progress_of(
    total: Option<i64>,
    processed: Option<i64>,
    success: Option<i64>,
    error: Option<i64>,
) -> Option<crate::domain::bedrock::JobProgress> {
    let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    total.map(|t| crate::domain::bedrock::JobProgress {
        total_record_count: n(Some(t)),
        processed_record_count: n(processed),
        success_record_count: n(success),
        error_record_count: n(error),
    })
}

pub fn to_sdk_status(s: BedrockJobStatus) -> ModelInvocationJobStatus {
    ModelInvocationJobStatus::from(s.as_str())
}

#[async_trait]
impl BatchInference for BedrockBatch {
    async fn create_job(&self, req: &CreateJobRequest) -> Result<BedrockJobArn, PortError> {
        let input = ModelInvocationJobS3InputDataConfig::builder()
            .s3_uri(req.input.to_string())
            .s3_input_format(S3InputFormat::Jsonl)
            .build()
            .map_err(build_err)?;
        let output = ModelInvocationJobS3OutputDataConfig::builder()
            .s3_uri(req.output.to_string())
            .build()
            .map_err(build_err)?;
        let tags = req
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(build_err))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .create_model_invocation_job()
            .job_name(&req.job_name)
            .client_request_token(&req.client_request_token)
            .role_arn(&req.role_arn)
            .model_id(req.model_id.as_str())
            .input_data_config(ModelInvocationJobInputDataConfig::S3InputDataConfig(input))
            .output_data_config(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(
                output,
            ))
            .timeout_duration_in_hours(req.timeout_hours as i32)
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .map_err(|e| classify("CreateModelInvocationJob", e))?;
        // An answer without a usable ARN (a repeated token is "ignored" without an error, the
        // service model says): the caller finds the job by its name.
        BedrockJobArn::parse(out.job_arn()).map_err(|_| {
            PortError::new(
                ErrorKind::Conflict,
                "CreateModelInvocationJob answered without a job ARN",
            )
        })
    }

    async fn get_job(&self, arn: &BedrockJobArn) -> Result<JobInfo, PortError> {
        let out = self
            .client
            .get_model_invocation_job()
            .job_identifier(arn.as_str())
            .send()
            .await
            .map_err(|e| classify("GetModelInvocationJob", e))?;
        Ok(JobInfo {
            arn: BedrockJobArn::parse(out.job_arn()).map_err(|_| bad_answer("job ARN"))?,
            job_name: out.job_name().unwrap_or_default().to_owned(),
            model_id: ModelId::parse(out.model_id()).map_err(|_| bad_answer("model id"))?,
            status: status_of(out.status())?,
            failure_message: out.message().filter(|m| !m.is_empty()).map(str::to_owned),
            input: input_uri(out.input_data_config())?,
            output: output_uri(out.output_data_config())?,
            submitted_at: to_chrono(Some(out.submit_time())),
            last_modified_at: to_chrono(out.last_modified_time()),
            progress: progress_of(
                out.total_record_count(),
                out.processed_record_count(),
                out.success_record_count(),
                out.error_record_count(),
            ),
            expires_at: out.job_expiration_time().map(|t| to_chrono(Some(t))),
            ended_at: out.end_time().map(|t| to_chrono(Some(t))),
        })
    }

    async fn stop_job(&self, arn: &BedrockJobArn) -> Result<(), PortError> {
        self.client
            .stop_model_invocation_job()
            .job_identifier(arn.as_str())
            .send()
            .await
            .map_err(|e| classify("StopModelInvocationJob", e))?;
        Ok(())
    }

    async fn list_jobs(&self, status: Option<BedrockJobStatus>) -> Result<Vec<JobInfo>, PortError> {
        self.list(status, None).await
    }

    async fn find_job(&self, name: &str) -> Result<Option<JobInfo>, PortError> {
        let jobs = self.list(None, Some(name)).await?;
        Ok(jobs.into_iter().find(|j| j.job_name == name))
    }
}

impl BedrockBatch {
    /// `ListModelInvocationJobs`, every page, by status and a part of the name.
    async fn list(
        &self,
        status: Option<BedrockJobStatus>,
        name_contains: Option<&str>,
    ) -> Result<Vec<JobInfo>, PortError> {
        let mut pages = self
            .client
            .list_model_invocation_jobs()
            .set_status_equals(status.map(to_sdk_status))
            .set_name_contains(name_contains.map(str::to_owned))
            .into_paginator()
            .send();
        let mut jobs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListModelInvocationJobs", e))?;
            for s in page.invocation_job_summaries() {
                jobs.push(JobInfo {
                    arn: BedrockJobArn::parse(s.job_arn()).map_err(|_| bad_answer("job ARN"))?,
                    job_name: s.job_name().to_owned(),
                    model_id: ModelId::parse(s.model_id()).map_err(|_| bad_answer("model id"))?,
                    status: status_of(s.status())?,
                    failure_message: s.message().filter(|m| !m.is_empty()).map(str::to_owned),
                    input: input_uri(s.input_data_config())?,
                    output: output_uri(s.output_data_config())?,
                    submitted_at: to_chrono(Some(s.submit_time())),
                    last_modified_at: to_chrono(s.last_modified_time()),
                    progress: None,
                    expires_at: s.job_expiration_time().map(|t| to_chrono(Some(t))),
                    ended_at: s.end_time().map(|t| to_chrono(Some(t))),
                });
            }
        }
        Ok(jobs)
    }
}
