//! Stopping a Bedrock job: the cancel's stop, the deadline's cut-off, a job created for an
//! intent that was cancelled or moved on meanwhile.

use crate::app::{Deps, StageError};
use crate::ports::ErrorKind;

/// Asks Bedrock to stop a job. A job already stopping or finished (Bedrock answers validation,
/// conflict or not found) has nothing left to stop, so that is success.
pub async fn stop_job(
    deps: &Deps,
    arn: &crate::domain::ids::BedrockJobArn,
) -> Result<(), StageError> {
    match deps.bedrock.stop_job(arn).await {
        Ok(()) => {
            tracing::info!(bedrock_job_arn = %arn, "stop requested");
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::Validation | ErrorKind::Conflict | ErrorKind::NotFound
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
