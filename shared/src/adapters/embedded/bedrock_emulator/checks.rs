//! What Bedrock checks before a job runs: the input's records, quotas, record ids, image
//! limits and S3 locations, and the CreateModelInvocationJob request itself.

use super::*;

impl BedrockEmulator {
    /// Reads every `.jsonl` file of the job's input folder (or the one file it names).
    pub(super) async fn read_input(
        &self,
        job: &Row,
    ) -> Result<Vec<(String, u64, Vec<InputRecord>)>, String> {
        let input = S3Uri::parse(&job.input).map_err(|e| e.rule)?;
        let keys = if input.key.ends_with(".jsonl") {
            vec![input.object_key().map_err(|e| e.rule)?]
        } else {
            self.objects
                .list(&input.bucket, &input.key)
                .await
                .map_err(|e| format!("cannot list input: {e}"))?
                .into_iter()
                .filter(|k| k.as_str().ends_with(".jsonl"))
                .collect()
        };
        if keys.is_empty() {
            return Err(format!("no .jsonl input files found at {input}"));
        }
        let mut files = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes = self
                .objects
                .get(&S3Uri::object(&input.bucket, &key))
                .await
                .map_err(|e| format!("cannot read {key}: {e}"))?;
            let text =
                String::from_utf8(bytes.clone()).map_err(|_| format!("{key} is not UTF-8"))?;
            let mut records = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let value: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| format!("{key} line {}: not JSON ({e})", n + 1))?;
                let model_input = value
                    .get("modelInput")
                    .filter(|m| m.is_object())
                    .cloned()
                    .ok_or_else(|| format!("{key} line {}: modelInput must be an object", n + 1))?;
                // Bedrock fills a missing recordId in. A present one is an "alphanumeric
                // string" (the user guide's data-format page today; older versions said 11
                // characters), at most RECORD_ID_MAX_LEN long.
                let record_id = match value.get("recordId") {
                    None => format!("AUTO{:07}", records.len() + 1),
                    Some(r) => r
                        .as_str()
                        .filter(|id| is_record_id(id))
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            format!(
                                "{key} line {}: recordId {r} is not an alphanumeric string of 1 to {RECORD_ID_MAX_LEN} characters",
                                n + 1
                            )
                        })?,
                };
                records.push(InputRecord {
                    record_id,
                    model_input,
                });
            }
            files.push((key.file_name().to_owned(), bytes.len() as u64, records));
        }
        Ok(files)
    }

    /// Bedrock's same-folder rule for records that reference images in S3: each must sit in
    /// the folder the job reads, and exist. The reason a record is refused, if it is.
    pub(super) async fn check_locations(
        &self,
        job: &Row,
        model_input: &serde_json::Value,
    ) -> Option<String> {
        let input = S3Uri::parse(&job.input).ok()?;
        let folder = input.key.trim_end_matches('/').to_owned() + "/";
        for raw in crate::domain::family::s3_locations(model_input) {
            let inside = S3Uri::parse(&raw)
                .ok()
                .filter(|u| u.bucket == input.bucket && u.key.starts_with(&folder));
            let Some(uri) = inside else {
                return Some(format!(
                    "ValidationException: s3Location {raw} is not in the job's input folder {input}"
                ));
            };
            if self.objects.head(&uri, 0).await.is_err() {
                return Some(format!(
                    "ValidationException: s3Location {raw} does not exist"
                ));
            }
        }
        None
    }

    /// A record's images and their tokens, as Bedrock would count them from the pixels it is
    /// sent, or why it refuses the record (an image over its limits, an s3Location outside the
    /// job's folder).
    pub(super) async fn record_images(
        &self,
        job: &Row,
        model_input: &serde_json::Value,
    ) -> Result<(u64, Vec<Vec<u8>>), String> {
        if let Some(msg) = self.check_locations(job, model_input).await {
            return Err(msg);
        }
        let mut images = crate::adapters::embedded::vision::inline_images(model_input);
        for raw in crate::domain::family::s3_locations(model_input) {
            let uri = S3Uri::parse(&raw).map_err(|e| e.rule)?;
            images.push(self.objects.get(&uri).await.map_err(|e| e.to_string())?);
        }
        let tokens = images
            .iter()
            .map(|b| crate::adapters::embedded::vision::image_tokens(b))
            .sum::<Result<u64, String>>()?;
        Ok((tokens, images))
    }

    pub(super) async fn validate(&self, job: &Row, q: &Quotas) -> Result<u64, String> {
        let files = self.read_input(job).await?;
        let mut total = 0u64;
        let mut bytes = 0u64;
        for (name, size, records) in &files {
            if *size > q.max_file_bytes {
                return Err(format!(
                    "input file {name} is {size} bytes; the limit is {}",
                    q.max_file_bytes
                ));
            }
            if records.len() as u64 > q.max_records_per_file {
                return Err(format!(
                    "input file {name} has {} records; the limit is {}",
                    records.len(),
                    q.max_records_per_file
                ));
            }
            total += records.len() as u64;
            bytes += size;
        }
        if total < q.min_records_per_job {
            return Err(format!(
                "the job has {total} records; the minimum per batch inference job is {}",
                q.min_records_per_job
            ));
        }
        if total > q.max_records_per_job {
            return Err(format!(
                "the job has {total} records; the limit is {}",
                q.max_records_per_job
            ));
        }
        if bytes > q.max_job_bytes {
            return Err(format!(
                "the job input is {bytes} bytes; the limit is {}",
                q.max_job_bytes
            ));
        }
        Ok(total)
    }
}

pub(super) fn check_request(req: &CreateJobRequest) -> Result<(), PortError> {
    let name_ok = (1..=63).contains(&req.job_name.len())
        && req
            .job_name
            .starts_with(|c: char| c.is_ascii_alphanumeric())
        && req
            .job_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !name_ok {
        return Err(bad(format!(
            "jobName {:?} does not match Bedrock's grammar",
            req.job_name
        )));
    }
    if !is_client_token(&req.client_request_token) {
        return Err(bad("clientRequestToken does not match Bedrock's grammar"));
    }
    if !(24..=168).contains(&req.timeout_hours) {
        return Err(bad("timeoutDurationInHours must be 24 to 168"));
    }
    if !req.role_arn.starts_with("arn:aws:iam::") {
        return Err(bad("roleArn must be an IAM role ARN"));
    }
    Ok(())
}

/// The longest recordId the emulator takes. The user guide's data-format page asks for an
/// "alphanumeric string" and states no length; older versions of it said 11 characters. Bedrock's
/// own generated ids and AWS's samples stay far below this bound, which only keeps a hostile
/// manifest from holding unbounded ids.
pub const RECORD_ID_MAX_LEN: usize = 128;

/// A recordId as the data-format page describes it: alphanumeric, non-empty.
pub fn is_record_id(id: &str) -> bool {
    (1..=RECORD_ID_MAX_LEN).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `clientRequestToken` as botocore's `bedrock` service model (2023-04-20) constrains
/// `ModelInvocationIdempotencyToken`: 1 to 256 characters matching
/// `^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$`: alphanumeric runs joined by hyphens, never
/// starting or ending with one.
pub fn is_client_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token.starts_with(|c: char| c.is_ascii_alphanumeric())
        && token.ends_with(|c: char| c.is_ascii_alphanumeric())
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl BedrockEmulator {
    /// Records a new job, or finds the one of the same client token (CreateModelInvocationJob's
    /// idempotency): its ARN, and whether it is new. A name another job has is a conflict.
    pub(super) fn insert_job(
        &self,
        req: &CreateJobRequest,
        arn: &str,
        now: &str,
    ) -> Result<(String, bool), PortError> {
        self.db.tx(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT arn FROM emulator_jobs WHERE client_token = ?1",
                    [&req.client_request_token],
                    |r| r.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if let Some(arn) = existing {
                return Ok((arn, false));
            }
            let name_taken: bool = tx
                .query_row("SELECT 1 FROM emulator_jobs WHERE job_name = ?1", [&req.job_name], |_| Ok(true))
                .optional()
                .map_err(map_err)?
                .unwrap_or(false);
            if name_taken {
                return Err(PortError::new(
                    ErrorKind::Conflict,
                    format!("a job named {} already exists", req.job_name),
                ));
            }
            tx.execute(
                "INSERT INTO emulator_jobs (arn, job_name, model_id, input, output, status, failure_message, stop_requested, submitted_at, updated_at, client_token, role_arn, timeout_hours) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 0, ?7, ?7, ?8, ?9, ?10)",
                params![
                    arn,
                    req.job_name,
                    req.model_id.as_str(),
                    req.input.to_string(),
                    req.output.to_string(),
                    BedrockJobStatus::Submitted.as_str(),
                    now,
                    req.client_request_token,
                    req.role_arn,
                    req.timeout_hours
                ],
            )
            .map_err(map_err)?;
            Ok((arn.to_owned(), true))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_checking_a_client_token_should_follow_the_service_model_pattern() {
        for ok in ["a", "bo0123p1a1", "a-b", "a--b-c9", &"x".repeat(256)] {
            assert!(is_client_token(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a b", &"x".repeat(257)] {
            assert!(!is_client_token(bad), "{bad}");
        }
    }

    #[test]
    fn when_checking_a_record_id_should_take_any_alphanumeric_id() {
        for ok in [
            "REC00000001",
            "a",
            "RECORD0000000000001",
            &"9".repeat(RECORD_ID_MAX_LEN),
        ] {
            assert!(is_record_id(ok), "{ok}");
        }
        for bad in ["", "REC-1", "rec 1", &"9".repeat(RECORD_ID_MAX_LEN + 1)] {
            assert!(!is_record_id(bad), "{bad}");
        }
    }
}
