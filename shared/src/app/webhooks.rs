//! Completion webhooks: a terminal intent's `BATCH_COMPLETED` or `BATCH_FAILED` event, routed
//! to the webhooks queue, becomes one POST to the URL its request named, signed under the
//! Standard Webhooks scheme with the secret the request gave, the job view as its `data`.
//!
//! At least once, never blocking the pipeline: a receiver that fails (no answer, or not 2xx) is
//! retried through the queue, with its backoff, then the DLQ; every try carries the same
//! `webhook-id` (the event's id), so a receiver drops a duplicate. Replay: a redelivered event
//! posts again with the same id. An address that resolves to this machine, its metadata
//! service or a private network is refused when deployed (`domain::webhook`), and not retried.

use super::{Deps, Outcome, StageError};
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::webhook::{COMPLETED, FAILED};
use crate::ports::{ErrorKind, PortError};

/// Posts the webhook of the intent `event` ended, if its request named one.
pub async fn deliver(deps: &Deps, event: &DomainEvent) -> Result<Outcome, StageError> {
    let kind = match event.kind {
        EventKind::BatchCompleted => COMPLETED,
        EventKind::BatchFailed => FAILED,
        other => return Ok(Outcome::Unknown(format!("{other} has no webhook"))),
    };
    let Some(intent) = deps.store.get(&event.detail.intent_id).await? else {
        return Ok(Outcome::Unknown(event.detail.intent_id.to_string()));
    };
    let Some(hook) = intent.webhook.clone() else {
        return Ok(Outcome::AlreadyDone);
    };
    let view = super::status::job_status(deps, &intent.user_id, &intent.job_id).await?;
    let body = serde_json::to_vec(&serde_json::json!({
        "type": kind,
        "timestamp": event.detail.occurred_at,
        "data": view,
    }))
    .map_err(|e| StageError::Permanent(format!("webhook body: {e}")))?;
    let id = &event.detail.event_id;
    let now = deps.clock.now().timestamp();
    let signature = standardwebhooks::Webhook::new(&hook.secret)
        .and_then(|w| w.sign(id, now, &body))
        .map_err(|e| StageError::Permanent(format!("webhook secret: {e}")))?;
    let headers = [
        (standardwebhooks::HEADER_WEBHOOK_ID, id.clone()),
        (standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, now.to_string()),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ];
    let local = deps.settings.webhook_local;
    match deps.webhooks.post(&hook.url, &headers, body, local).await {
        Ok(code) if (200..300).contains(&code) => {
            crate::metrics::count(crate::metrics::WEBHOOKS_DELIVERED, 1);
            tracing::info!(intent_id = %intent.intent_id, webhook_id = %id, code, "webhook delivered");
            Ok(Outcome::Advanced(intent.status))
        }
        Ok(code) => failed(PortError::new(
            ErrorKind::Transient,
            format!("the receiver answered {code}"),
        )),
        Err(e) if e.kind == ErrorKind::Validation => {
            // An address that is not allowed stays not allowed: logged and counted, not retried.
            crate::metrics::count(crate::metrics::WEBHOOKS_FAILED, 1);
            tracing::warn!(intent_id = %intent.intent_id, webhook_id = %id, error = %e, "webhook refused");
            Ok(Outcome::Unknown(format!("webhook refused: {e}")))
        }
        Err(e) => failed(e),
    }
}

/// A failed try: counted, and retried through the queue.
fn failed(e: PortError) -> Result<Outcome, StageError> {
    crate::metrics::count(crate::metrics::WEBHOOKS_FAILED, 1);
    tracing::warn!(error = %e, "webhook not delivered; the queue retries it");
    Err(StageError::Retryable(PortError::new(
        ErrorKind::Transient,
        format!("webhook not delivered: {e}"),
    )))
}
