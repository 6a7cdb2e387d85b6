//! AWS adapters: one file per service, each implementing its port over the real SDK and
//! classifying SDK errors once, here, into `PortError` kinds.

pub mod bedrock;
pub mod bedrock_runtime;
pub mod dynamodb;
pub mod eventbridge;
pub mod lambda;
pub mod s3;
pub mod sqs;

use crate::ports::{ErrorKind, PortError};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Error codes that mean "slow down" in every service we call.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TooManyRequestsException",
    "SlowDown",
    // InvokeModel's "slow down" family (Bedrock Runtime API reference, InvokeModel errors):
    // 429 for a model still warming up ("The AWS SDK will automatically retry the operation"),
    // 503 "The service isn't currently available. Try again later.", and 424 "an error while
    // processing the model". Retried over minutes without spending a record's attempts.
    "ModelNotReadyException",
    "ServiceUnavailableException",
    "ModelErrorException",
];

/// Error codes that mean "try again later" (a fault on the service's side).
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ModelTimeoutException",
];

/// Maps an error code the service returned to a kind.
pub fn kind_of_code(code: &str) -> ErrorKind {
    match code {
        c if THROTTLING_CODES.contains(&c) => ErrorKind::Throttled,
        c if TRANSIENT_CODES.contains(&c) => ErrorKind::Transient,
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedException" => ErrorKind::Forbidden,
        "ServiceQuotaExceededException" | "LimitExceededException" => ErrorKind::QuotaExceeded,
        "ConditionalCheckFailedException" | "ConflictException" => ErrorKind::Conflict,
        "ResourceNotFoundException"
        | "NoSuchKey"
        | "NotFound"
        | "NoSuchBucket"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist" => ErrorKind::NotFound,
        "ValidationException"
        | "InvalidParameterValue"
        | "InvalidParameterException"
        | "InvalidRequest"
        | "SerializationException" => ErrorKind::Validation,
        _ => ErrorKind::Unexpected,
    }
}

/// Classifies any SDK error: service errors by code (and 5xx as transient), transport
/// failures and timeouts as transient, anything else as unexpected. The source is kept.
pub fn classify<E, R>(what: &str, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            let status = status_of(service.raw());
            match kind_of_code(code) {
                ErrorKind::Unexpected if status >= 500 => ErrorKind::Transient,
                ErrorKind::Unexpected if status == 404 => ErrorKind::NotFound,
                ErrorKind::Unexpected if status == 429 => ErrorKind::Throttled,
                ErrorKind::Unexpected if status == 403 => ErrorKind::Forbidden,
                k => k,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ErrorKind::Transient
        }
        _ => ErrorKind::Unexpected,
    };
    let message = match err.code() {
        Some(code) => format!("{what}: {code}: {}", err.message().unwrap_or_default()),
        None => format!("{what}: {err}"),
    };
    PortError::with_source(kind, message, err)
}

/// The HTTP status of a raw response, when the adapter can see one.
fn status_of<R: std::fmt::Debug + 'static>(raw: &R) -> u16 {
    // `R` is `HttpResponse` for every SDK call; read its status through Debug-free access.
    let any = raw as &dyn std::any::Any;
    any.downcast_ref::<aws_smithy_runtime_api_http::HttpResponse>()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

mod aws_smithy_runtime_api_http {
    pub use aws_sdk_dynamodb::config::http::HttpResponse;
}

/// Loads the shared SDK configuration once per process: region and credentials from the
/// environment (the Lambda role in AWS), endpoints from `AWS_ENDPOINT_URL[_<SERVICE>]`.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The SDK clients, built once per process from one `SdkConfig`.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub bedrock: aws_sdk_bedrock::Client,
    pub bedrock_runtime: aws_sdk_bedrockruntime::Client,
}

impl AwsClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        // A local emulator (moto) serves buckets by path, not by virtual host.
        let endpoint_override = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(endpoint_override)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(sdk),
            eventbridge: aws_sdk_eventbridge::Client::new(sdk),
            bedrock: aws_sdk_bedrock::Client::new(sdk),
            bedrock_runtime: aws_sdk_bedrockruntime::Client::new(sdk),
        }
    }

    /// The ports wired to these clients, as every function uses them.
    pub fn deps(&self, config: &crate::config::FunctionConfig) -> crate::app::Deps {
        use std::sync::Arc;
        let store = Arc::new(
            dynamodb::DynamoStore::new(
                self.dynamodb.clone(),
                &config.intents_table,
                &config.results_table,
            )
            // An intent's TTL counts from its end; its other jobs end within their timeout
            // (`timeoutDurationInHours`, at most 7 days) of the first one's results.
            .with_results_ttl_days(
                config.settings.intent_ttl_days
                    + (i64::from(config.settings.job_timeout_hours) + 23) / 24,
            ),
        );
        crate::app::Deps {
            store: store.clone(),
            results: store.clone(),
            slots: store.clone(),
            allowances: store.clone(),
            rates: store.clone(),
            leases: store.clone(),
            duplicates: store.clone(),
            nights: store.clone(),
            history: store,
            webhooks: std::sync::Arc::new(crate::adapters::webhook_http::HttpWebhooks),
            objects: Arc::new(s3::S3ObjectStore::new(self.s3.clone())),
            bus: Arc::new(eventbridge::EventBridgeBus::new(
                self.eventbridge.clone(),
                &config.event_bus_name,
            )),
            bedrock: Arc::new(bedrock::BedrockBatch::new(self.bedrock.clone())),
            uploads: Arc::new(dynamodb::DynamoUploads::new(
                self.dynamodb.clone(),
                &config.uploads_table,
            )),
            on_demand: Arc::new(bedrock_runtime::BedrockRuntime::new(
                self.bedrock_runtime.clone(),
            )),
            clock: Arc::new(crate::adapters::clock::SystemClock),
            settings: Arc::new(config.settings.clone()),
        }
    }
}

/// Cold start for every function: JSON logs, config from the environment (failing fast),
/// SDK clients built once.
pub async fn cold_start() -> Result<crate::app::Deps, crate::config::ConfigError> {
    crate::telemetry::init_json_logs();
    let config = crate::config::FunctionConfig::from_env()?;
    let clients = AwsClients::new(&sdk_config().await);
    Ok(clients.deps(&config))
}
