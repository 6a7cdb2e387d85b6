//! The nightly run: a schedule makes one intent per user with uploads that day, with an
//! intentId derived from (userId, day), through the same `accept` as every request: running it
//! twice, or replaying it, finds the intents it made (`cached`) and creates nothing. Its start
//! also writes the summaries owed for the nights that ended (`app::nights`).

use crate::app::intake::{accept, IntakeError};
use crate::app::{Deps, StageError};
use crate::domain::ids::{TraceId, UserId};
use crate::domain::intent::{ImageSelection, NewIntent};
use crate::domain::manifest::DEFAULT_PROMPT_VERSION;
use crate::domain::uploads::nightly_intent_id;
use crate::ports::{ErrorKind, PortError};
use chrono::NaiveDate;
use futures::stream::{self, StreamExt};

/// Users whose nightly intent is made at once.
const NIGHTLY_CONCURRENCY: usize = 16;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NightlyReport {
    pub users: usize,
    pub created: usize,
    pub existing: usize,
    pub refused: usize,
}

/// One intent per user with uploads on `day`.
pub async fn nightly(deps: &Deps, day: NaiveDate) -> Result<NightlyReport, StageError> {
    let Some(model) = deps.settings.default_model().cloned() else {
        return Err(StageError::Permanent("no model is configured".into()));
    };
    // The nights that ended since the last run get their summaries (a pass of the reconciler
    // may not have seen their last intent end); a failure here must not hold the run up.
    if let Err(e) = crate::app::nights::close_ended(deps).await {
        tracing::warn!(error = %e, "summarizing the ended nights failed; the reconciler tries again");
    }
    let users = deps.uploads.users(day).await?;
    let deadline = deps.settings.nightly_deadline(deps.clock.now());
    let outcomes: Vec<(UserId, Result<bool, IntakeError>)> = stream::iter(users)
        .map(|user| {
            let req = NewIntent {
                intent_id: nightly_intent_id(&user, day),
                client_intent_id: None,
                user_id: user.clone(),
                selection: ImageSelection::Day(day),
                model_id: model.clone(),
                prompt_version: DEFAULT_PROMPT_VERSION.to_owned(),
                trace_id: TraceId::generate(),
                deadline,
                webhook: None,
            };
            async move { (user, accept(deps, req).await.map(|a| a.cached)) }
        })
        .buffer_unordered(NIGHTLY_CONCURRENCY)
        .collect()
        .await;
    let mut report = NightlyReport::default();
    let mut retry = None;
    for (user, outcome) in outcomes {
        report.users += 1;
        match outcome {
            Ok(true) => report.existing += 1,
            Ok(false) => report.created += 1,
            // Only if the default model changed since the first run of this day: that day's
            // intent stands as it was made.
            Err(IntakeError::KeyReused(id)) => {
                tracing::warn!(user_id = %user, intent_id = %id, "nightly intent exists with another payload; left as it is");
                report.refused += 1;
            }
            Err(IntakeError::Unavailable(e)) => retry = Some(e),
            Err(e) => {
                retry = Some(PortError::new(ErrorKind::Unexpected, e.to_string()));
            }
        }
    }
    // Every user was tried; a failed one makes the run fail so it is run again (what was
    // made is found again, `cached`).
    if let Some(e) = retry {
        return Err(StageError::Retryable(e));
    }
    tracing::info!(day = %day, users = report.users, created = report.created, existing = report.existing, "nightly run done");
    Ok(report)
}
