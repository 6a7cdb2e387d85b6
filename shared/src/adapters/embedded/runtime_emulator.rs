//! Bedrock Runtime's `InvokeModel`, emulated: the same deterministic answer the batch emulator
//! writes for a record, so a record run on-demand reads like one run in a job. Tests can make
//! calls fail, to exercise retries and their bounds.

use super::bedrock_emulator::emulated_output;
use crate::domain::ids::ModelId;
use crate::ports::{ErrorKind, OnDemandInference, PortError};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct RuntimeEmulator {
    calls: AtomicUsize,
    /// Every call fails with this, while set.
    fail_all: Mutex<Option<ErrorKind>>,
}

impl RuntimeEmulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls made so far (failed ones included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// From now on every call fails with `kind` (None: succeed again).
    pub fn fail_all(&self, kind: Option<ErrorKind>) {
        *self.fail_all.lock().unwrap_or_else(|p| p.into_inner()) = kind;
    }
}

#[async_trait]
impl OnDemandInference for RuntimeEmulator {
    async fn invoke(
        &self,
        model: &ModelId,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(kind) = *self.fail_all.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(PortError::new(kind, "emulated InvokeModel failure"));
        }
        if body.get("messages").and_then(|m| m.as_array()).is_none() {
            return Err(PortError::new(
                ErrorKind::Validation,
                "ValidationException: body has no messages",
            ));
        }
        Ok(emulated_output(model.as_str(), body))
    }
}
