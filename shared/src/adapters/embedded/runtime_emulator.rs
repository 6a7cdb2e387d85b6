//! Bedrock Runtime's `InvokeModel`, emulated: the same deterministic answer the batch emulator
//! writes for a record, so a record run on-demand reads like one run in a job. Tests can make
//! calls fail, to exercise retries and their bounds; under the fault `on-demand-throttle` it
//! keeps a model's requests-per-minute quota as Bedrock does, over any 60 seconds of its clock,
//! and answers `ThrottlingException` (429) above it.

use super::bedrock_emulator::emulated_output_with;
use super::local_model::LocalModel;
use crate::domain::ids::ModelId;
use crate::ports::{Clock, ErrorKind, OnDemandInference, PortError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A requests-per-minute quota kept over any 60 seconds of `clock`.
struct Throttle {
    per_minute: usize,
    clock: Arc<dyn Clock>,
    /// Every call taken, oldest first (for the quota and for [`RuntimeEmulator::busiest_minute`]).
    taken: Mutex<Vec<DateTime<Utc>>>,
}

#[derive(Default)]
pub struct RuntimeEmulator {
    calls: AtomicUsize,
    throttled: AtomicUsize,
    /// Every call fails with this, while set.
    fail_all: Mutex<Option<ErrorKind>>,
    throttle: Option<Throttle>,
    /// Who answers for the model (`BO_LOCAL_MODEL`).
    local_model: LocalModel,
}

impl std::fmt::Debug for RuntimeEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeEmulator")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl RuntimeEmulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// An emulator that takes at most `per_minute` calls in any 60 seconds of `clock`.
    pub fn throttled(per_minute: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            throttle: Some(Throttle {
                per_minute: per_minute.max(1),
                clock,
                taken: Mutex::default(),
            }),
            ..Self::default()
        }
    }

    /// This emulator with `model` answering for the model.
    pub fn with_local_model(self, model: LocalModel) -> Self {
        Self {
            local_model: model,
            ..self
        }
    }

    /// Calls made so far (failed ones included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls answered ThrottlingException so far.
    pub fn throttled_calls(&self) -> usize {
        self.throttled.load(Ordering::SeqCst)
    }

    /// The most calls taken within any 60 seconds (under `on-demand-throttle`; else 0).
    pub fn busiest_minute(&self) -> usize {
        let Some(t) = &self.throttle else { return 0 };
        let taken = t.taken.lock().unwrap_or_else(|p| p.into_inner());
        let mut window: VecDeque<DateTime<Utc>> = VecDeque::new();
        let mut most = 0;
        for &at in taken.iter() {
            window.push_back(at);
            while window
                .front()
                .is_some_and(|&f| at - f >= Duration::seconds(60))
            {
                window.pop_front();
            }
            most = most.max(window.len());
        }
        most
    }

    /// From now on every call fails with `kind` (None: succeed again).
    pub fn fail_all(&self, kind: Option<ErrorKind>) {
        *self.fail_all.lock().unwrap_or_else(|p| p.into_inner()) = kind;
    }

    /// Takes one call under the quota, or answers Bedrock's throttling error.
    fn admit(&self) -> Result<(), PortError> {
        let Some(t) = &self.throttle else {
            return Ok(());
        };
        let now = t.clock.now();
        let mut taken = t.taken.lock().unwrap_or_else(|p| p.into_inner());
        let recent = taken
            .iter()
            .rev()
            .take_while(|&&at| now - at < Duration::seconds(60))
            .count();
        if recent >= t.per_minute {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(PortError::new(
                ErrorKind::Throttled,
                "ThrottlingException: Too many requests, please wait before trying again. (emulated fault on-demand-throttle)",
            ));
        }
        taken.push(now);
        Ok(())
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
        self.admit()?;
        if body.get("messages").and_then(|m| m.as_array()).is_none() {
            return Err(PortError::new(
                ErrorKind::Validation,
                "ValidationException: body has no messages",
            ));
        }
        // Each image decoded once: for its tokens and for the local model's reading.
        let images = super::vision::inline_images(body);
        let reading = match images.first() {
            Some(image) => self.local_model.read(image).await,
            None => None,
        };
        let tokens = super::vision::input_tokens_of(&images, body);
        Ok(emulated_output_with(
            model.as_str(),
            body,
            tokens,
            reading.as_ref(),
        ))
    }
}
