//! Bedrock Runtime adapter: `InvokeModel` for the on-demand path (pools below the minimum at
//! their deadline, and re-runs of failed records). The body is the record's `modelInput`, so
//! a record runs on-demand exactly as it would have in the batch job.

use super::classify;
use crate::domain::ids::ModelId;
use crate::ports::{ErrorKind, OnDemandInference, PortError};
use async_trait::async_trait;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::Client;

#[derive(Debug, Clone)]
pub struct BedrockRuntime {
    client: Client,
}

impl BedrockRuntime {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl OnDemandInference for BedrockRuntime {
    async fn invoke(
        &self,
        model: &ModelId,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, PortError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            PortError::with_source(ErrorKind::Validation, "encoding an InvokeModel body", e)
        })?;
        let out = self
            .client
            .invoke_model()
            .model_id(model.as_str())
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(bytes))
            .send()
            .await
            .map_err(|e| classify("bedrock-runtime.InvokeModel", e))?;
        serde_json::from_slice(out.body().as_ref()).map_err(|e| {
            PortError::with_source(
                ErrorKind::Unexpected,
                "InvokeModel answered with a body that is not JSON",
                e,
            )
        })
    }
}
