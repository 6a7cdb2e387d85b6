//! Normalizing phone photos (`cargo bench --bench photos`): the real `domain::normalize` over
//! generated phone-like images, one core, each kind in a child process of its own so its
//! peak RSS is its own. For each kind: images per second, bytes of the manifest record
//! before (the original, base64) and after (the normalized copy, base64), records per 5 GB
//! job before and after, and peak RSS. Then the JPEG quality, measured: the 12 MP photo's
//! normalized size at 75, 85 and 95.
//!
//! Kinds (`batch_orchestrator::samples`): a 12 MP JPEG (4032x3024, q92, stored sideways with
//! EXIF orientation 6, sensor noise); a 50 MP JPEG (8160x6120, q95); a 1170x2532 PNG
//! screenshot; a 12 MP WebP (4000x3000).
//!
//! `BO_BENCH_QUICK=1` runs each kind 3 times instead of 10.

#[path = "support/rss.rs"]
mod rss;
use rss::vm_hwm_kib;

use batch_orchestrator::samples::{phone_jpeg, photo_webp, screenshot_png};
use shared::domain::normalize::{normalize, normalize_with, JpegDecode, Policy, Target, QUALITY};
use std::time::Instant;

/// The whole policy: the same work for every kind (the economy policy's crop is measured by
/// `cargo bench --bench tokens`).
const CLAUDE: Target = Target::new(1568, Policy::Whole);
/// A job's byte quota.
const JOB_BYTES: f64 = 5.0 * 1024.0 * 1024.0 * 1024.0;
/// A record's JSON around its base64 image (prompt, parameters, record id).
const RECORD_OVERHEAD: usize = 900;

/// A kind of photo: its label and how to make one.
type Kind = (&'static str, fn() -> Vec<u8>);

fn kinds() -> [Kind; 4] {
    [
        ("12 MP JPEG q92, orientation 6", || {
            phone_jpeg(4032, 3024, 6, 92, 1)
        }),
        ("50 MP JPEG q95", || phone_jpeg(8160, 6120, 1, 95, 2)),
        ("1170x2532 PNG screenshot", || screenshot_png(1170, 2532)),
        ("12 MP WebP", || photo_webp(4000, 3000, 3)),
    ]
}

fn record_bytes(image: usize) -> usize {
    image.div_ceil(3) * 4 + RECORD_OVERHEAD
}

/// Child mode: normalize kind `k` `runs` times; prints `PHOTO secs_each before after w h rss`.
fn child(k: usize, runs: usize) -> anyhow::Result<()> {
    let bytes = (kinds()[k].1)();
    // The peak from here on is normalizing's (the generated original stays resident).
    std::fs::write("/proc/self/clear_refs", "5")?;
    let start = Instant::now();
    let mut out = None;
    for _ in 0..runs {
        out = Some(normalize(&bytes, CLAUDE).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let each = start.elapsed().as_secs_f64() / runs as f64;
    let n = out.ok_or_else(|| anyhow::anyhow!("no run"))?;
    println!(
        "PHOTO {each} {} {} {} {} {}",
        bytes.len(),
        n.jpeg.len(),
        n.width,
        n.height,
        vm_hwm_kib()
    );
    Ok(())
}

fn run_child(k: usize, runs: usize) -> anyhow::Result<Vec<f64>> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--photo-child", &k.to_string(), &runs.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("PHOTO "))
        .ok_or_else(|| anyhow::anyhow!("child: {text} {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--photo-child") {
        let arg = |i: usize| args.get(pos + i).and_then(|n| n.parse().ok()).unwrap_or(1);
        return child(arg(1), arg(2));
    }
    let runs = if std::env::var_os("BO_BENCH_QUICK").is_some() {
        3
    } else {
        10
    };
    println!("Normalizing to a 1568 px long edge at q{QUALITY}, one core, {runs} runs each:\n");
    println!("| kind | original | images/s per core | record before | record after | records per 5 GB job before / after | normalized | peak RSS |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (k, (label, _)) in kinds().iter().enumerate() {
        let f = run_child(k, runs)?;
        let (each, before, after, w, h, rss) =
            (f[0], f[1] as usize, f[2] as usize, f[3], f[4], f[5]);
        let (rb, ra) = (record_bytes(before), record_bytes(after));
        let per_job = |r: usize| ((JOB_BYTES / r as f64) as u64).min(50_000);
        // Bedrock refuses an image over 3.75 MB: before normalization it was skipped.
        let before_job = if before > 3_932_160 {
            "skipped (over 3.75 MB)".to_string()
        } else {
            per_job(rb).to_string()
        };
        println!(
            "| {label} | {:.2} MB | {:.1} | {:.0} KB | {:.0} KB | {before_job} / {} | {w}x{h}, {:.0} KB | {:.1} MiB |",
            before as f64 / 1e6,
            1.0 / each,
            rb as f64 / 1e3,
            ra as f64 / 1e3,
            per_job(ra),
            after as f64 / 1e3,
            rss / 1024.0
        );
    }
    println!(
        "\nDecoding the 12 MP JPEG at a DCT scale against whole (the rest of the path the same):\n"
    );
    println!("| JPEG decode | ms per photo | photos/s per core |");
    println!("| --- | --- | --- |");
    let photo = phone_jpeg(4032, 3024, 6, 92, 1);
    for (label, how) in [
        ("1/2 DCT-scaled (normalize)", JpegDecode::Scaled),
        ("whole", JpegDecode::Full),
    ] {
        let start = Instant::now();
        for _ in 0..runs {
            normalize_with(&photo, CLAUDE, how).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let each = start.elapsed().as_secs_f64() / runs as f64;
        println!("| {label} | {:.0} | {:.1} |", each * 1e3, 1.0 / each);
    }
    println!("\nJPEG quality of the normalized 12 MP photo (1568 px):\n");
    println!("| quality | bytes | record | PSNR against q100 |");
    println!("| --- | --- | --- | --- |");
    let at = |quality: u8| {
        normalize(&photo, Target { quality, ..CLAUDE }).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let reference = decode(&at(100)?.jpeg)?;
    for quality in [60, 75, 85, 95] {
        let n = at(quality)?;
        println!(
            "| {quality} | {:.0} KB | {:.0} KB | {:.1} dB |",
            n.jpeg.len() as f64 / 1e3,
            record_bytes(n.jpeg.len()) as f64 / 1e3,
            psnr(&reference, &decode(&n.jpeg)?)
        );
    }
    Ok(())
}

fn decode(jpeg: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(jpeg_decoder::Decoder::new(std::io::Cursor::new(jpeg)).decode()?)
}

/// Peak signal-to-noise ratio of `b` against `a`, in dB (higher is closer; ~40 dB and up is
/// visually lossless on text).
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / n as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
