//! The webhook-sender Lambda: wiring only (see `shared::adapters::aws::lambda::serve`).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::adapters::aws::lambda::serve("webhook-sender", |deps, event: SqsEvent| async move {
        Ok(webhook_sender::handle(&deps, event).await)
    })
    .await
}
