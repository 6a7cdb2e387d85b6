//! A job's run: one output line per record, in Bedrock's output format, and the emulated
//! model answers.

use super::*;

impl BedrockEmulator {
    /// Runs the records and writes the outputs: every record, or (a stopped or expired job) the
    /// first half of each file. Under `completed-with-errors` one line in
    /// [`fault_plan::ERROR_LINE_EVERY`] is an error object, as a Completed job's can be.
    pub(super) async fn process(
        &self,
        job: &Row,
        opts: &EmulatorOptions,
        take: Take,
    ) -> Result<ManifestSummary, PortError> {
        let with_errors = self.plan().has(BedrockFault::CompletedWithErrors);
        let files = self.read_input(job).await.map_err(bad)?;
        let arn = BedrockJobArn::parse(&job.arn).map_err(|e| bad(e.rule))?;
        let out_dir = S3Uri::parse(&job.output)
            .map_err(|e| bad(e.rule))?
            .join(arn.job_suffix());
        let mut summary = ManifestSummary::default();
        let renamed = self.plan().has(BedrockFault::OutputRenamed);
        let late = take == Take::Half && self.plan().has(BedrockFault::LateOutput);
        for (file_no, (name, _, records)) in files.into_iter().enumerate() {
            summary.total_record_count += records.len() as u64;
            let take = match take {
                Take::All => records.len(),
                Take::Half => records.len() / 2,
            };
            let mut out = String::new();
            for (n, rec) in records.into_iter().take(take).enumerate() {
                if opts.drop_records.contains(&rec.record_id) {
                    continue;
                }
                summary.processed_record_count += 1;
                let error_line = with_errors
                    && n % fault_plan::ERROR_LINE_EVERY == fault_plan::ERROR_LINE_EVERY - 1;
                let line = self
                    .record_line((job, opts), &rec, error_line, &mut summary)
                    .await;
                out.push_str(&line.to_string());
                out.push('\n');
            }
            // AWS documents one output file per input file, and no name for it.
            let file = if renamed {
                format!("{}-{:05}.jsonl.out", arn.job_suffix(), file_no + 1)
            } else {
                output_file_name(&name)
            };
            self.put_output(out_dir.join(&file), out.into_bytes(), late)
                .await?;
        }
        let body = serde_json::to_vec(&summary)
            .map_err(|e| PortError::with_source(ErrorKind::Unexpected, "summary", e))?;
        self.put_output(out_dir.join(SUMMARY_FILE), body, late)
            .await?;
        self.set_counts(job, &summary)?;
        Ok(summary)
    }

    /// One record's output line, counted in `summary`: an error object (an unreadable image, a
    /// record the options fail, or under `completed-with-errors` an `error_line`), else the
    /// emulated model's answer.
    async fn record_line(
        &self,
        (job, opts): (&Row, &EmulatorOptions),
        rec: &InputRecord,
        error_line: bool,
        summary: &mut ManifestSummary,
    ) -> serde_json::Value {
        let error = |code: serde_json::Value, msg: &str| {
            serde_json::json!({"recordId": rec.record_id, "modelInput": rec.model_input,
                "error": {"errorCode": code, "errorMessage": msg}})
        };
        let read = self.record_images(job, &rec.model_input).await;
        let refused = match (&read, opts.fail_records.get(&rec.record_id)) {
            (Err(msg), _) => Some(error(400.into(), msg)),
            (Ok(_), Some((code, msg))) => Some(error(serde_json::json!(code), msg)),
            (Ok(_), None) if error_line => Some(error(400.into(), "ValidationException: the model could not process this record (emulated fault completed-with-errors)")),
            _ => None,
        };
        if let Some(line) = refused {
            summary.error_record_count += 1;
            return line;
        }
        let (tokens, images) = read.unwrap_or_default();
        let input_tokens =
            tokens + crate::adapters::embedded::vision::text_chars(&rec.model_input) as u64 / 4;
        let reading = match images.first() {
            Some(image) => opts.local_model.read(image).await,
            None => None,
        };
        let mut output = emulated_output_with(
            &job.model_id,
            &rec.model_input,
            input_tokens,
            reading.as_ref(),
        );
        if let Some(fault) = self.plan().answer_fault(&rec.record_id) {
            spoil(&mut output, fault);
        }
        summary.success_record_count += 1;
        summary.input_token_count += output["usage"]["input_tokens"].as_u64().unwrap_or(0);
        summary.output_token_count += output["usage"]["output_tokens"].as_u64().unwrap_or(0);
        serde_json::json!({"recordId": rec.record_id, "modelInput": rec.model_input, "modelOutput": output})
    }

    /// Writes one output object now, or (`late-output`) holds it back some seconds.
    async fn put_output(&self, uri: S3Uri, bytes: Vec<u8>, late: bool) -> Result<(), PortError> {
        if late {
            let at = self.clock.now() + Duration::seconds(fault_plan::LATE_OUTPUT_SECS);
            self.plan().hold(at, uri, bytes);
            return Ok(());
        }
        self.objects.put(&uri, bytes).await
    }

    /// When output held back by `late-output` lands next, if any is held.
    pub fn next_event_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.plan().next_due()
    }

    /// Writes the held-back output that is due; how many objects landed.
    pub(super) async fn land_late_output(&self) -> Result<usize, PortError> {
        let due = self.plan().due(self.clock.now());
        for (uri, bytes) in &due {
            self.objects.put(uri, bytes.clone()).await?;
        }
        Ok(due.len())
    }
}

/// A deterministic Claude Messages response whose text is receipt JSON derived from a hash of
/// the input (the synthetic local model). Every answer says it is emulated.
pub fn emulated_output(model_id: &str, model_input: &serde_json::Value) -> serde_json::Value {
    emulated_output_with(
        model_id,
        model_input,
        crate::adapters::embedded::vision::input_tokens(model_input),
        None,
    )
}

/// [`emulated_output`] with the input tokens already counted (the batch emulator counts an
/// s3Location image's pixels too), answering `reading` (the local model's receipt-v2 reading
/// of the image, see [`crate::adapters::embedded::local_model`]) when there is one.
pub fn emulated_output_with(
    model_id: &str,
    model_input: &serde_json::Value,
    input_tokens: u64,
    reading: Option<&serde_json::Value>,
) -> serde_json::Value {
    let input = model_input.to_string();
    let digest = Sha256::digest(input.as_bytes());
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    const MERCHANTS: [&str; 5] = [
        "Emulated Mart",
        "Emulated Cafe",
        "Emulated Books",
        "Emulated Pharmacy",
        "Emulated Grocer",
    ];
    let merchant = MERCHANTS[(n % MERCHANTS.len() as u64) as usize];
    let items: Vec<serde_json::Value> = (0..(1 + (n >> 8) % 3))
        .map(|i| {
            let cents = 100 + ((n >> (16 + i * 8)) % 2000);
            serde_json::json!({"description": format!("emulated item {}", i + 1), "amount": cents as f64 / 100.0})
        })
        .collect();
    let total: f64 = items.iter().filter_map(|i| i["amount"].as_f64()).sum();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
        + Duration::days(((n >> 40) % 28) as i64);
    let v2 = crate::adapters::embedded::vision::asks_receipt_v2(model_input);
    let text = if let Some(read) = reading {
        if v2 {
            read.to_string()
        } else {
            crate::adapters::embedded::local_model::as_receipt_v1(read).to_string()
        }
    } else if v2 {
        receipt_v2(merchant, date, n)
    } else {
        serde_json::json!({
            "merchant": merchant,
            "date": date.format("%Y-%m-%d").to_string(),
            "total": (total * 100.0).round() / 100.0,
            "currency": "USD",
            "items": items,
            "note": "emulated output from batch-orchestrator's Bedrock emulator, not a real model",
        })
        .to_string()
    };
    let output_tokens = text.len() as u64 / 4;
    // An application inference profile's id names no model: answer in the request's shape.
    let family = ModelId::parse(model_id)
        .ok()
        .and_then(|m| crate::domain::family::for_model(&m))
        .unwrap_or(if model_input.get("schemaVersion").is_some() {
            &crate::domain::family::Nova
        } else {
            &crate::domain::family::Claude
        });
    let mut answer = family.answer(&text, input_tokens, output_tokens);
    if let Some(obj) = answer.as_object_mut() {
        obj.insert(
            "id".into(),
            serde_json::Value::String(format!("msg_emulated_{}", &hex::encode(digest)[..24])),
        );
        obj.insert(
            "model".into(),
            serde_json::Value::String(match reading {
                Some(_) => format!("{model_id} (emulated: read by tesseract)"),
                None => format!("{model_id} (emulated)"),
            }),
        );
    }
    answer
}

/// A receipt-v2 answer whose arithmetic holds: items of quantity x unit price, their sum the
/// subtotal, 8% tax on top, the total their sum; all in cents.
fn receipt_v2(merchant: &str, date: chrono::NaiveDate, n: u64) -> String {
    let items: Vec<(u64, u64)> = (0..(1 + (n >> 8) % 3))
        .map(|i| {
            (
                1 + (n >> (12 + i * 4)) % 3,
                100 + ((n >> (16 + i * 8)) % 900),
            )
        })
        .collect();
    let subtotal: u64 = items.iter().map(|(q, p)| q * p).sum();
    let tax = (subtotal * 8 + 50) / 100;
    let usd = |cents: u64| cents as f64 / 100.0;
    serde_json::json!({
        "merchant": {"name": merchant, "address": null, "phone": null},
        "date": date.format("%Y-%m-%d").to_string(),
        "time": null,
        "currency": "USD",
        "subtotal": usd(subtotal),
        "taxes": [{"rate": 8, "amount": usd(tax), "included": false}],
        "tip": null,
        "discount": null,
        "total": usd(subtotal + tax),
        "paymentMethod": null,
        "items": items.iter().enumerate().map(|(i, (q, p))| serde_json::json!({
            "description": format!("emulated item {}", i + 1),
            "quantity": q,
            "unitPrice": usd(*p),
            "amount": usd(q * p),
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

/// A first answer spoiled as the fault plan says (`wrong-total`, `malformed-json`,
/// `future-date`): the Claude or Nova answer's text rewritten.
pub(super) fn spoil(output: &mut serde_json::Value, fault: BedrockFault) {
    let Some(text) = answer_text_mut(output) else {
        return;
    };
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    match fault {
        BedrockFault::WrongTotal => {
            let total = v["total"].as_f64().unwrap_or(0.0);
            v["total"] = serde_json::json!(((total + 10.0) * 100.0).round() / 100.0);
            *text = v.to_string();
        }
        BedrockFault::FutureDate => {
            v["date"] = serde_json::json!("2099-01-01");
            *text = v.to_string();
        }
        BedrockFault::MalformedJson => {
            let cut = v.to_string();
            *text = format!("Here is the receipt: {}", &cut[..cut.len() / 2]);
        }
        _ => {}
    }
}

/// The answer text of a Claude (`content[0].text`) or Nova (`output.message.content[0].text`)
/// response.
fn answer_text_mut(output: &mut serde_json::Value) -> Option<&mut String> {
    let path: &[&str] = if output.get("content").is_some() {
        &["content"]
    } else {
        &["output", "message", "content"]
    };
    let mut at = output;
    for key in path {
        at = at.get_mut(*key)?;
    }
    match at.get_mut(0)?.get_mut("text")? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}
