//! Results ingestion at job size: the status watcher's real path (`apply_job_status`, which
//! streams each output part line by line, maps every line to its image and stores the
//! results) over a job output of realistic lines, on one core (a current-thread runtime), in
//! a child process so its peak RSS is its own.
//!
//! Each line is what Bedrock writes for a Claude record: the record's whole `modelInput`
//! echoed (a 75 KB image, so 100 KB of base64: 50,000 lines are a 5 GB job, the byte quota)
//! and a `modelOutput` with a receipt's JSON answer and its usage.

use crate::rss::vm_hwm_kib;
use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use shared::domain::bedrock::{output_file_name, S3Uri};
use shared::domain::family::{self, ImageRef};
use shared::domain::ids::{BedrockJobArn, IntentId, ModelId, ObjectKey, RecordId, TraceId, UserId};
use shared::domain::intent::{
    BatchIntent, BatchJob, ImageEntry, ImageList, ImageSelection, ManifestPart, NewIntent,
};
use shared::domain::manifest::{image_record_id, prompt, MediaType, DEFAULT_PROMPT_VERSION};
use shared::domain::status::BedrockJobStatus;
use shared::ports::IntentStore as _;
use std::io::Write as _;
use std::time::Instant;

const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/ingestbench1";

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// One output line's text before and after its record id: a real Claude record (the family's
/// own encoder) with a model output appended.
fn line_template(model: &ModelId, image_kib: usize) -> anyhow::Result<(String, String)> {
    let family = family::for_model(model).ok_or_else(|| err("no family"))?;
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while jpeg.len() < image_kib * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        jpeg.extend_from_slice(&x.to_le_bytes());
    }
    let text = prompt(DEFAULT_PROMPT_VERSION).ok_or_else(|| err("no prompt"))?;
    let record = family.record(
        "REC00000000",
        MediaType::Jpeg,
        ImageRef::Bytes(&jpeg),
        text,
        1024,
    );
    let body = record
        .trim_end()
        .strip_suffix('}')
        .ok_or_else(|| err("not an object"))?;
    let answer = r#"{"merchant":"Corner Grocery","date":"2026-11-28","total":23.47,"currency":"USD","items":[{"description":"Milk 1L","amount":1.29},{"description":"Bread","amount":2.49}]}"#;
    let output = serde_json::json!({
        "id": "msg_bdrk_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 1612, "output_tokens": 96}
    });
    let full = format!("{body},\"modelOutput\":{output}}}\n");
    let (head, tail) = full
        .split_once("REC00000000")
        .ok_or_else(|| err("no record id"))?;
    Ok((head.to_owned(), tail.to_owned()))
}

/// The intent's one job, its output part of `lines` lines of `image_kib` KiB images written
/// where Bedrock would write it.
async fn output_written(
    app: &Embedded,
    intent: &BatchIntent,
    model: &ModelId,
    (lines, image_kib): (usize, usize),
) -> anyhow::Result<BatchJob> {
    let s = &app.deps.settings;
    let mut job = BatchJob::planned(&intent.job_id, 1, &s.manifests_bucket, &s.outputs_bucket);
    let (head, tail) = line_template(model, image_kib)?;
    let out_uri: S3Uri = job
        .output
        .join(BedrockJobArn::parse(ARN).map_err(err)?.job_suffix())
        .join(&output_file_name("part-00001.jsonl"));
    let path = app.objects.path_of(&out_uri)?;
    std::fs::create_dir_all(path.parent().ok_or_else(|| err("no parent"))?)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    for i in 0..lines {
        w.write_all(head.as_bytes())?;
        w.write_all(image_record_id(i).as_bytes())?;
        w.write_all(tail.as_bytes())?;
    }
    w.flush()?;
    let bytes = std::fs::metadata(&path)?.len();
    job.parts = vec![ManifestPart {
        part: 1,
        uri: job.input.join("part-00001.jsonl"),
        records: lines as u64,
        bytes,
    }];
    Ok(job)
}

/// An intent of `lines` images with one job, submitted, and its output part written.
async fn fixture(app: &Embedded, lines: usize, image_kib: usize) -> anyhow::Result<u64> {
    let deps = &app.deps;
    let model = deps
        .settings
        .default_model()
        .cloned()
        .ok_or_else(|| err("no model"))?;
    let now = deps.clock.now();
    let mut intent = BatchIntent::new(
        NewIntent {
            intent_id: IntentId::parse("ingest-bench").map_err(err)?,
            client_intent_id: None,
            user_id: UserId::parse("bench-user").map_err(err)?,
            selection: ImageSelection::Day(now.date_naive()),
            model_id: model.clone(),
            prompt_version: DEFAULT_PROMPT_VERSION.into(),
            trace_id: TraceId::generate(),
            deadline: None,
            webhook: None,
        },
        now,
        30,
    );
    let images: Vec<ImageEntry> = (0..lines)
        .map(|index| {
            Ok(ImageEntry {
                index,
                key: ObjectKey::parse(&format!("uploads/bench-user/2026-11-28/r{index:06}.jpg"))?,
                record_id: RecordId::for_image(&intent.job_id, index),
                rejected: None,
                duplicate_of: None,
            })
        })
        .collect::<Result<_, shared::domain::ids::IdError>>()
        .map_err(err)?;
    let list = shared::app::lists::list_uri(deps, &intent.job_id, "images");
    shared::app::lists::put(deps, &list, &images)
        .await
        .map_err(err)?;
    let job = output_written(app, &intent, &model, (lines, image_kib)).await?;
    let bytes = job.parts[0].bytes;
    intent
        .record_manifest(Vec::new(), vec![job], now)
        .map_err(err)?;
    intent.image_list = Some(ImageList {
        uri: list,
        count: lines,
        rejected: 0,
    });
    intent
        .record_submission(1, BedrockJobArn::parse(ARN).map_err(err)?, now)
        .map_err(err)?;
    intent.outbox = None;
    app.store.create(&intent).await.map_err(err)?;
    Ok(bytes)
}

/// Child mode: ingest one output of `lines` lines of `image_kib` KiB images; prints
/// `INGEST lines bytes secs rss_kib`.
pub fn child(lines: usize, image_kib: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let app = Embedded::open(EmbeddedOptions::new(dir.path()))?;
        let bytes = fixture(&app, lines, image_kib).await?;
        std::fs::write("/proc/self/clear_refs", "5")?;
        let start = Instant::now();
        let arn = BedrockJobArn::parse(ARN).map_err(err)?;
        let event = shared::domain::bedrock::JobEvent {
            arn,
            status: BedrockJobStatus::Completed,
            failure_message: None,
            job: None,
        };
        shared::app::watch::apply_job_event(&app.deps, &event)
            .await
            .map_err(err)?;
        let secs = start.elapsed().as_secs_f64();
        let stored = app
            .store
            .get(&IntentId::parse("ingest-bench").map_err(err)?)
            .await?;
        let ok = stored
            .and_then(|i| i.counts)
            .map_or(0, |c| c.success_record_count);
        anyhow::ensure!(ok == lines as u64, "ingested {ok} of {lines} records");
        println!("INGEST {lines} {bytes} {secs} {}", vm_hwm_kib());
        Ok(())
    })
}

/// Runs the child for a tenth of `lines` and for `lines`, with images of 75 KiB (100 KB of
/// base64: `lines` = 50,000 is a 5 GB job) and of a quarter of that, side by side: RSS
/// follows the number of records, not the output's size.
pub fn report(lines: usize) -> anyhow::Result<()> {
    println!("Results ingestion (status watcher, one core), side by side:\n");
    println!("| output lines | image | output size | time | MB/s per core | peak RSS |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (n, kib) in [(lines / 10, 75), (lines, 19), (lines, 75)] {
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["--ingest-child", &n.to_string(), &kib.to_string()])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .lines()
            .find(|l| l.starts_with("INGEST "))
            .ok_or_else(|| {
                err(format!(
                    "child said: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            })?
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let (bytes, secs, rss) = (f[1], f[2], f[3]);
        println!(
            "| {n} | {kib} KiB | {:.2} GB | {secs:.1} s | {:.0} | {:.1} MiB |",
            bytes / 1e9,
            bytes / 1e6 / secs,
            rss / 1024.0
        );
    }
    Ok(())
}
