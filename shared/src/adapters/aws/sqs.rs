//! SQS adapter: what a local event-source driver and the DLQ replay need. The replay moves a
//! message by sending a copy to the source queue and deleting the original only after the
//! send succeeded, so a crash mid-way duplicates (harmless: every stage is idempotent) but
//! never loses. It does not depend on StartMessageMoveTask (moto lacks it).

use super::classify;
use crate::ports::{ErrorKind, PortError};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;

#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: Client,
}

/// One message seen by a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub message_id: String,
    pub body: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Messages sent back (or, on a dry run, that would be).
    pub moved: Vec<Moved>,
    /// Messages whose send failed; they stay in the DLQ.
    pub failed: usize,
}

impl SqsQueues {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn queue_url(&self, name: &str) -> Result<String, PortError> {
        let out = self
            .client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| classify("GetQueueUrl", e))?;
        out.queue_url
            .ok_or_else(|| PortError::new(ErrorKind::NotFound, format!("no URL for queue {name}")))
    }

    /// Up to 10 messages, waiting at most `wait_secs` for one; hidden for `visibility_secs`.
    pub async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_secs: i32,
        visibility_secs: i32,
    ) -> Result<Vec<Message>, PortError> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("ReceiveMessage", e))?;
        Ok(out.messages.unwrap_or_default())
    }

    pub async fn send(&self, url: &str, body: &str) -> Result<(), PortError> {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("SendMessage", e))?;
        Ok(())
    }

    /// Deletes messages by receipt handle; returns how many the queue refused.
    pub async fn delete(&self, url: &str, receipt_handles: &[String]) -> Result<usize, PortError> {
        let mut refused = 0;
        for chunk in receipt_handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .map_err(|e| {
                            PortError::with_source(ErrorKind::Unexpected, "build delete entry", e)
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("DeleteMessageBatch", e))?;
            refused += out.failed().len();
        }
        Ok(refused)
    }

    pub async fn release(&self, url: &str, receipt_handle: &str) -> Result<(), PortError> {
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| classify("ChangeMessageVisibility", e))?;
        Ok(())
    }

    /// Approximate visible + in-flight messages.
    pub async fn depth(&self, url: &str) -> Result<u64, PortError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let n = |k: A| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(A::ApproximateNumberOfMessages) + n(A::ApproximateNumberOfMessagesNotVisible))
    }

    /// Moves at most `limit` messages from `dlq_url` back to `source_url`. A dry run receives
    /// them, reports them, and makes them visible again at once.
    pub async fn replay_dlq(
        &self,
        dlq_url: &str,
        source_url: &str,
        limit: usize,
        dry_run: bool,
    ) -> Result<ReplayReport, PortError> {
        let mut report = ReplayReport::default();
        let mut seen = std::collections::HashSet::new();
        while report.moved.len() + report.failed < limit {
            let want = (limit - report.moved.len() - report.failed).min(10) as i32;
            let batch = self.receive(dlq_url, want, 0, 60).await?;
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::new();
            let mut fresh = 0;
            for m in batch {
                let (Some(id), Some(handle)) = (m.message_id.clone(), m.receipt_handle.clone())
                else {
                    continue;
                };
                let body = m.body.clone().unwrap_or_default();
                if !seen.insert(id.clone()) {
                    // A dry run sees released messages again: stop at the first repeat.
                    self.release(dlq_url, &handle).await?;
                    continue;
                }
                fresh += 1;
                if dry_run {
                    self.release(dlq_url, &handle).await?;
                    report.moved.push(Moved {
                        message_id: id,
                        body,
                    });
                    continue;
                }
                match self.send(source_url, &body).await {
                    Ok(()) => {
                        done.push(handle);
                        report.moved.push(Moved {
                            message_id: id,
                            body,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(message_id = %id, error = %e, "replay send failed; message stays in the DLQ");
                        report.failed += 1;
                    }
                }
            }
            if !done.is_empty() {
                self.delete(dlq_url, &done).await?;
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(report)
    }
}
