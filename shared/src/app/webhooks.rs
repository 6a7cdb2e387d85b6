//! Completion webhooks: a terminal intent's `BATCH_COMPLETED` or `BATCH_FAILED` event, routed
//! to the webhooks queue, becomes one POST to the URL its request named, signed under the
//! Standard Webhooks scheme with the secret the request gave, the job view as its `data` (the
//! rules and their sources: `domain::webhook`).
//!
//! At least once, never blocking the pipeline, on the spec's schedule:
//! - a 2xx ends it (`Delivered`); `410 Gone` disables the endpoint for the intent (`Gone`);
//! - any other answer, or none, is a failed try: the intent keeps the count, and the same event
//!   is staged again in its outbox for the time the schedule gives (5 s, 5 min, 30 min, ... 24 h
//!   after the failures before it). The outbox sweep (every reconciler pass) publishes it when
//!   due, and the queue brings it back here. The message itself succeeds, so no receive count
//!   is spent and no DLQ is reached while the schedule runs (about 75 hours);
//! - after the schedule's last try it is given up (`Exhausted`), logged and counted.
//!
//! Every try carries the same `webhook-id` (the event's id), so a receiver drops a duplicate.
//! Replay: a redelivered event posts again with the same id (at least once), and a try is
//! counted by a version-conditional write. An address that resolves to this machine, its
//! metadata service or a private network is refused when deployed, and not retried.

use crate::app::{cas_loop, lost_races, Cas, Deps, Outcome, StageError};
use crate::domain::events::{DomainEvent, EventKind};
use crate::domain::intent::{BatchIntent, Outbox};
use crate::domain::webhook::{canonical_secret, DeliveryEnd, Webhook, COMPLETED, FAILED};
use crate::ports::{ErrorKind, PortError, Updated};

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
    let Some(hook) = intent.webhook.clone().filter(|h| h.ended.is_none()) else {
        return Ok(Outcome::AlreadyDone);
    };
    let view = crate::app::status::job_status(deps, &intent.user_id, &intent.job_id).await?;
    let body = serde_json::to_vec(&serde_json::json!({
        "type": kind,
        "timestamp": event.detail.occurred_at,
        "data": view,
    }))
    .map_err(|e| StageError::Permanent(format!("webhook body: {e}")))?;
    // Every try carries the event's own id (a staged retry's entry adds `#try{n}` to it).
    let id = &webhook_id(&event.detail.event_id).to_owned();
    let now = deps.clock.now().timestamp();
    let signature = canonical_secret(&hook.secret)
        .and_then(|s| standardwebhooks::Webhook::new(&s).map_err(|e| e.to_string()))
        .and_then(|w| w.sign(id, now, &body).map_err(|e| e.to_string()))
        .map_err(|e| StageError::Permanent(format!("webhook secret: {e}")))?;
    let headers = [
        (standardwebhooks::HEADER_WEBHOOK_ID, id.clone()),
        (standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, now.to_string()),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature),
    ];
    let local = deps.settings.webhook_local;
    let answer = deps.webhooks.post(&hook.url, &headers, body, local).await;
    let tried = Try::of(answer);
    tracing::info!(intent_id = %intent.intent_id, webhook_id = %id, outcome = ?tried, "webhook tried");
    record(deps, intent, event, tried).await
}

/// How one try went.
#[derive(Debug)]
enum Try {
    Delivered,
    Gone,
    /// An address that is not allowed stays not allowed: not retried.
    Refused(PortError),
    Failed(PortError),
}

impl Try {
    fn of(answer: Result<u16, PortError>) -> Self {
        match answer {
            Ok(code) if (200..300).contains(&code) => Self::Delivered,
            Ok(410) => Self::Gone,
            Ok(code) => Self::Failed(PortError::new(
                ErrorKind::Transient,
                format!("the receiver answered {code}"),
            )),
            Err(e) if e.kind == ErrorKind::Validation => Self::Refused(e),
            Err(e) => Self::Failed(e),
        }
    }
}

/// Writes what the try did to the intent (version-conditional, re-read on a lost race): its
/// end, or its failure and the next try staged in its outbox.
async fn record(
    deps: &Deps,
    intent: BatchIntent,
    event: &DomainEvent,
    tried: Try,
) -> Result<Outcome, StageError> {
    let status = intent.status;
    match &tried {
        Try::Delivered => crate::metrics::count(crate::metrics::WEBHOOKS_DELIVERED, 1),
        _ => crate::metrics::count(crate::metrics::WEBHOOKS_FAILED, 1),
    }
    let tried = &tried;
    cas_loop(intent, move |mut intent: BatchIntent| async move {
        let expected = intent.version;
        let now = deps.clock.now();
        let grace = chrono::Duration::seconds(deps.settings.outbox_grace_secs);
        let Some(hook) = intent.webhook.as_mut() else {
            return Ok(Cas::Done(Outcome::AlreadyDone));
        };
        match tried {
            Try::Delivered => hook.ended = Some(DeliveryEnd::Delivered),
            Try::Gone => hook.ended = Some(DeliveryEnd::Gone),
            Try::Refused(e) => {
                tracing::warn!(error = %e, "webhook refused; not retried");
                hook.ended = Some(DeliveryEnd::Exhausted);
            }
            Try::Failed(e) => {
                hook.failures += 1;
                match Webhook::next_delay(hook.failures) {
                    Some(delay) => {
                        tracing::warn!(error = %e, failures = hook.failures, retry_in_secs = delay.num_seconds(), "webhook not delivered; tried again on schedule");
                        // Staged so the sweep finds it orphaned (older than the grace) when due.
                        let staged_at = now + delay - grace;
                        let outbox = intent.outbox.get_or_insert_with(|| Outbox {
                            events: Vec::new(),
                            staged_at,
                        });
                        outbox.staged_at = staged_at;
                        // An entry of its own for this try: the sweep's clear of an earlier
                        // publish never removes it.
                        let mut retry = event.clone();
                        let base = webhook_id(&event.detail.event_id);
                        retry.detail.event_id = format!("{base}#try{}", hook.failures);
                        outbox.events.retain(|e| webhook_id(&e.detail.event_id) != base);
                        outbox.events.push(retry);
                    }
                    None => {
                        tracing::error!(error = %e, failures = hook.failures, "webhook given up after its schedule");
                        hook.ended = Some(DeliveryEnd::Exhausted);
                    }
                }
            }
        }
        intent.version = expected + 1;
        match deps.store.update(&intent, expected).await? {
            Updated::Written => Ok(Cas::Done(Outcome::Advanced(status))),
            Updated::Stale(current) => Ok(Cas::Again(*current)),
        }
    })
    .await?
    .ok_or_else(|| lost_races("webhook record"))
}

/// The webhook-id of an event or of a staged retry of it (`{event id}#try{n}`).
fn webhook_id(event_id: &str) -> &str {
    event_id
        .split_once("#try")
        .map_or(event_id, |(base, _)| base)
}
