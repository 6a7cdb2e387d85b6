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
                // Bedrock fills a missing recordId in. A present one follows the user guide's
                // record template: "11 character alphanumeric string".
                let record_id = match value.get("recordId") {
                    None => format!("AUTO{:07}", records.len() + 1),
                    Some(r) => r
                        .as_str()
                        .filter(|id| crate::domain::manifest::is_bedrock_record_id(id))
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            format!(
                                "{key} line {}: recordId {r} is not an 11 character alphanumeric string",
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

    /// A record's image tokens, as Bedrock would count them from the pixels it is sent, or why
    /// it refuses the record (an image over its limits, an s3Location outside the job's folder).
    pub(super) async fn image_tokens(
        &self,
        job: &Row,
        model_input: &serde_json::Value,
    ) -> Result<u64, String> {
        if let Some(msg) = self.check_locations(job, model_input).await {
            return Err(msg);
        }
        let mut images = super::super::vision::inline_images(model_input);
        for raw in crate::domain::family::s3_locations(model_input) {
            let uri = S3Uri::parse(&raw).map_err(|e| e.rule)?;
            images.push(self.objects.get(&uri).await.map_err(|e| e.to_string())?);
        }
        images
            .iter()
            .map(|b| super::super::vision::image_tokens(b))
            .sum()
    }

    pub(super) async fn validate(&self, job: &Row, q: &Quotas) -> Result<(), String> {
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
        Ok(())
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
    let token_ok = (1..=256).contains(&req.client_request_token.len())
        && req
            .client_request_token
            .starts_with(|c: char| c.is_ascii_alphanumeric())
        && req
            .client_request_token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !token_ok {
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
