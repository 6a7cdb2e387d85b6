//! EventBridge adapter: PutEvents in chunks of at most 10 entries and 256 KB. PutEvents can
//! fail some entries with HTTP 200; any failed entry fails the call, so the caller's outbox
//! keeps the events and they are sent again (consumers de-duplicate on `eventId`).

use super::{classify, kind_of_code};
use crate::domain::events::Envelope;
use crate::ports::{ErrorKind, EventBus, PortError};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;

pub const MAX_ENTRIES: usize = 10;
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

/// EventBridge's size of an entry: source, detail-type, detail and resources, in UTF-8 bytes.
pub fn entry_size(e: &Envelope) -> usize {
    e.source.len()
        + e.detail_type.len()
        + e.detail.to_string().len()
        + e.resources.iter().map(String::len).sum::<usize>()
}

/// Splits events into PutEvents calls under both limits, keeping their order.
pub fn chunk(events: &[Envelope]) -> Result<Vec<&[Envelope]>, PortError> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let size = entry_size(e);
        if size > MAX_REQUEST_BYTES {
            return Err(PortError::new(
                ErrorKind::Validation,
                format!(
                    "event {} is {size} bytes; EventBridge takes at most {MAX_REQUEST_BYTES}",
                    e.id
                ),
            ));
        }
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES) {
            chunks.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        chunks.push(&events[start..]);
    }
    Ok(chunks)
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PortError> {
        for part in chunk(events)? {
            let entries: Vec<PutEventsRequestEntry> = part
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .set_resources((!e.resources.is_empty()).then(|| e.resources.clone()))
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("PutEvents", e))?;
            if out.failed_entry_count > 0 {
                let codes: Vec<&str> = out
                    .entries()
                    .iter()
                    .filter_map(|e| e.error_code())
                    .collect();
                let kind = if codes.iter().all(|c| {
                    matches!(kind_of_code(c), ErrorKind::Transient | ErrorKind::Throttled)
                        || *c == "InternalFailure"
                }) {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Unexpected
                };
                return Err(PortError::new(
                    kind,
                    format!(
                        "PutEvents failed {} of {} entries: {}",
                        out.failed_entry_count,
                        part.len(),
                        codes.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}
