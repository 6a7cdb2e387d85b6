//! Manifest and planner figures at scale, each reported as a ratio measured side by side in
//! the same run (`cargo bench --profile release --bench manifest_scale`):
//!
//! 1. the manifest builder in base64 mode (Claude) for N photos already normalized at upload,
//!    through the embedded object store, against a raw copy of the same bytes;
//! 2. the builder's peak RSS for 5,000 against 50,000 records (each built in a fresh child
//!    process after another stored its images and recorded its request; `/proc/self/status`
//!    VmHWM);
//! 3. records per second in s3Location mode (Nova) at 50,000 records;
//!
//! The planner over a whole night is `cargo bench --bench night`.
//!
//! `BO_BENCH_QUICK=1` shrinks every size tenfold (a smoke run).

#[path = "support/rss.rs"]
mod rss;
use rss::vm_hwm_kib;

use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use serde_json::json;
use shared::adapters::embedded::objects::FsObjectStore;
use shared::app::manifest::build_manifest;
use shared::domain::bedrock::S3Uri;
use shared::domain::ids::{IntentId, ModelId, ObjectKey};
use shared::domain::normalize::{normalize, Policy, Target};
use shared::ports::{IntentStore as _, ObjectStore as _};
use std::time::{Duration, Instant};

const USER: &str = "bench-user";
const NOVA: &str = "amazon.nova-lite-v1:0";

fn quick() -> bool {
    std::env::var_os("BO_BENCH_QUICK").is_some()
}

fn scaled(n: usize) -> usize {
    if quick() {
        (n / 10).max(1)
    } else {
        n
    }
}

fn key(i: usize) -> String {
    format!("uploads/{USER}/2026-11-28/img-{i:06}.jpg")
}

async fn open(dir: &std::path::Path, max_images: usize) -> anyhow::Result<Embedded> {
    let mut opts = EmbeddedOptions::new(dir);
    opts.settings.max_images_per_intent = max_images;
    opts.settings.quotas.min_records_per_job = 1;
    // Jobs of its own at every size, so both sizes build the same way.
    opts.settings.pool_below_records = 0;
    // One image hard-linked under every key: measure the manifest, not duplicate finding.
    opts.settings.duplicate_window_days = 0;
    opts.settings
        .allowed_models
        .push(ModelId::parse(NOVA).map_err(|e| anyhow::anyhow!("{e}"))?);
    Embedded::open(opts)
}

/// Stores `n` images as a night finds them: `distinct` real photos of `side` (width, height)
/// and their normalized copies (made at upload, for both families' sizes), the rest hard
/// links to them (disk stays small, every key is its own object).
async fn store_images(
    app: &Embedded,
    dir: &std::path::Path,
    n: usize,
    side: (u16, u16),
    distinct: usize,
) -> anyhow::Result<()> {
    let fs = FsObjectStore::new(dir.join("s3"));
    let bucket = &app.deps.settings.uploads_bucket;
    for i in 0..n {
        let k = ObjectKey::parse(&key(i))?;
        let mut uris = vec![S3Uri::object(bucket, &k)];
        for edge in [1568, 1800] {
            uris.push(
                shared::app::normalized::normalized_uri(&app.deps, &k, edge).expect("a short key"),
            );
        }
        if i < distinct {
            let photo = batch_orchestrator::samples::phone_jpeg(side.0, side.1, 1, 90, i as u64);
            let target = Target::new(1568, Policy::default());
            let small = normalize(&photo, target).map_err(|e| anyhow::anyhow!("{e}"))?;
            app.objects.put(&uris[0], photo).await?;
            for uri in &uris[1..] {
                app.objects.put(uri, small.jpeg.clone()).await?;
            }
        } else {
            let k0 = ObjectKey::parse(&key(i % distinct))?;
            let srcs = [
                S3Uri::object(bucket, &k0),
                shared::app::normalized::normalized_uri(&app.deps, &k0, 1568).expect("a short key"),
                shared::app::normalized::normalized_uri(&app.deps, &k0, 1800).expect("a short key"),
            ];
            for (src, uri) in srcs.iter().zip(&uris) {
                let dest = fs.path_of(uri)?;
                std::fs::create_dir_all(dest.parent().ok_or_else(|| anyhow::anyhow!("root"))?)?;
                std::fs::hard_link(fs.path_of(src)?, dest)?;
            }
        }
    }
    Ok(())
}

/// Records an intent over the first `n` images.
async fn record(
    app: &Embedded,
    id: &str,
    n: usize,
    model: Option<&str>,
) -> anyhow::Result<IntentId> {
    let keys: Vec<String> = (0..n).map(key).collect();
    let mut payload = json!({"intentId": id, "userId": USER, "images": keys});
    if let Some(m) = model {
        payload["modelId"] = json!(m);
    }
    let answer = app.intake(payload).await;
    anyhow::ensure!(answer["statusCode"] == 202, "intake: {answer}");
    IntentId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Builds the manifest of a recorded intent of `n` images; the build's time.
async fn build_only(app: &Embedded, id: &IntentId, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    build_manifest(&app.deps, id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let took = start.elapsed();
    let intent = app
        .store
        .get(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    let records: u64 = intent.jobs.iter().map(|j| j.records()).sum();
    anyhow::ensure!(records == n as u64, "built {records} of {n} records");
    Ok(took)
}

async fn build(
    app: &Embedded,
    id: &str,
    n: usize,
    model: Option<&str>,
) -> anyhow::Result<Duration> {
    let id = record(app, id, n, model).await?;
    build_only(app, &id, n).await
}

/// The same bytes (the normalized copies the manifest reads), read from the same store and
/// written through the same streaming writer.
async fn raw_copy(app: &Embedded, n: usize, round: usize) -> anyhow::Result<(Duration, u64)> {
    let s = &app.deps.settings;
    let start = Instant::now();
    let out = S3Uri::object(
        &s.manifests_bucket,
        &ObjectKey::parse(&format!("raw/copy-{round}.bin"))?,
    );
    let mut w = app.objects.writer(&out).await?;
    for i in 0..n {
        let bytes = app
            .objects
            .get(
                &shared::app::normalized::normalized_uri(
                    &app.deps,
                    &ObjectKey::parse(&key(i))?,
                    1568,
                )
                .expect("a short key"),
            )
            .await?;
        w.write(&bytes).await?;
    }
    let written = w.finish().await?;
    Ok((start.elapsed(), written))
}

/// Child mode, first half: store `n` images in `dir` and record an intent over them.
async fn rss_prepare(n: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let app = open(dir, n).await?;
    store_images(&app, dir, n, (400, 600), 64).await?;
    record(&app, "rss", n, None).await?;
    Ok(())
}

/// Child mode, second half, in a fresh process (so the peak is the build's own, not what
/// the allocator kept from storing images and recording the request): build the manifest
/// and print the process's peak RSS.
async fn rss_build(n: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let app = open(dir, n).await?;
    let id = IntentId::parse("rss").map_err(|e| anyhow::anyhow!("{e}"))?;
    let before = vm_hwm_kib();
    build_only(&app, &id, n).await?;
    println!("RSS {n} {} {}", vm_hwm_kib(), before);
    Ok(())
}

/// Peak RSS of building an `n`-record manifest, and of the process before the build.
fn rss_of(n: usize) -> anyhow::Result<(u64, u64)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_string_lossy().into_owned();
    let child = |mode: &str| -> anyhow::Result<String> {
        let out = std::process::Command::new(std::env::current_exe()?)
            .args([mode, &n.to_string(), &path])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    child("--rss-prepare")?;
    let text = child("--rss-build")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("RSS "))
        .ok_or_else(|| anyhow::anyhow!("child said: {text}"))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    Ok((f[1], f[2]))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    for mode in ["--rss-prepare", "--rss-build"] {
        if let Some(pos) = args.iter().position(|a| a == mode) {
            let n: usize = args
                .get(pos + 1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(5000);
            let dir = std::path::PathBuf::from(args.get(pos + 2).cloned().unwrap_or_default());
            return if mode == "--rss-prepare" {
                rss_prepare(n, &dir).await
            } else {
                rss_build(n, &dir).await
            };
        }
    }

    // 1. base64 manifest against a raw copy of the same (normalized) bytes.
    let n = scaled(300);
    let dir = tempfile::tempdir()?;
    let app = open(dir.path(), n).await?;
    store_images(&app, dir.path(), n, (1176, 1568), n).await?;
    let mut manifest = Vec::new();
    let mut raw = Vec::new();
    let mut bytes = 0;
    for round in 0..3 {
        let (r, b) = raw_copy(&app, n, round).await?;
        raw.push(r);
        bytes = b;
        manifest.push(build(&app, &format!("b64-{round}"), n, None).await?);
    }
    manifest.sort();
    raw.sort();
    let (m, r) = (manifest[1], raw[1]);
    println!(
        "1. base64 manifest, {n} normalized photos of {} KiB ({} MiB): manifest {:.0} ms, raw copy {:.0} ms, ratio {:.2}x (target <= 1.3x); medians of 3",
        bytes / n as u64 / 1024,
        bytes / (1024 * 1024),
        m.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        m.as_secs_f64() / r.as_secs_f64()
    );
    drop(app);
    drop(dir);

    // 2. Peak RSS, 5,000 against 50,000 records.
    let (small, small_base) = rss_of(scaled(5_000))?;
    let (large, large_base) = rss_of(scaled(50_000))?;
    println!(
        "2. peak RSS during the build: {} records {:.1} MiB, {} records {:.1} MiB, ratio {:.2}x (target <= 1.2x and <= 128 MiB); peak before the build (the store opened) {:.1} / {:.1} MiB",
        scaled(5_000),
        small as f64 / 1024.0,
        scaled(50_000),
        large as f64 / 1024.0,
        large as f64 / small as f64,
        small_base as f64 / 1024.0,
        large_base as f64 / 1024.0
    );

    // 3. s3Location records per second.
    let n = scaled(50_000);
    let dir = tempfile::tempdir()?;
    let app = open(dir.path(), n).await?;
    store_images(&app, dir.path(), n, (400, 600), 64).await?;
    let took = build(&app, "nova", n, Some(NOVA)).await?;
    println!(
        "3. s3Location (Nova) manifest, {n} records: {:.2} s, {:.0} records/s (a header read and a server-side copy each)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    drop(app);
    drop(dir);

    Ok(())
}
