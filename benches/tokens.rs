//! Tokens per receipt at the same legibility (`cargo bench --bench tokens`): the corpus of
//! phone-like receipt photos with known text (`support/corpus.rs`) through the real
//! `domain::normalize`, with the baseline (the whole policy: the whole photo sized as Claude's
//! family sizes it, a 1568 px long edge and at most 1.15 MP, in colour) and the economy policy
//! (the same family's) side by side, each copy read by Tesseract
//! (`support/ocr.rs`). Prints a table per photo, the economy policy's speed on one core, and
//! one line:
//!
//! `tokens: images=N tokens_per_image=T baseline_tokens=B bytes_per_record=R baseline_bytes=BB cer=C baseline_cer=BC`
//!
//! Tokens are Claude's width x height / 750 (what the emulator counts); a record is the base64
//! image plus ~900 bytes of JSON; `cer` is the mean of the photos' character error rates.
//!
//! - `BO_TOKENS_SWEEP=10,12,16`: also the economy policy at those print heights (the measure
//!   that chose `TEXT_PX`).
//! - `BO_TOKENS_PICTURE=path.jpg`: writes three photos next to what the model receives.
//! - `BO_TOKENS_RUNS=N`: timing runs of the corpus (default 3).

#[path = "support/corpus.rs"]
mod corpus;
#[path = "support/ocr.rs"]
mod ocr;

use corpus::Photo;
use shared::domain::family::Claude;
use shared::domain::normalize::{normalize, Normalized, Policy, Target, QUALITY, TEXT_PX};
use std::time::Instant;

/// A record's JSON around its base64 image (prompt, parameters, record id).
const RECORD_OVERHEAD: usize = 900;

fn tokens(n: &Normalized) -> u64 {
    u64::from(n.width) * u64::from(n.height) / 750
}

fn record_bytes(n: &Normalized) -> usize {
    n.jpeg.len().div_ceil(3) * 4 + RECORD_OVERHEAD
}

fn economy(text_px: u32) -> Target {
    Target {
        text_px,
        ..Target::for_family(&Claude, Policy::Economy)
    }
}

/// `f` over `items` on every core, in order.
fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker"))
            .collect()
    })
}

/// One copy of a photo and how Tesseract reads it.
struct Copy {
    n: Normalized,
    cer: f64,
}

/// Each photo normalized for `target`, and read.
fn measure(photos: &[Photo], target: Target) -> anyhow::Result<Vec<Copy>> {
    par_map(photos, |p| -> anyhow::Result<Copy> {
        let n = normalize(&p.bytes, target).map_err(|e| anyhow::anyhow!("{}: {e}", p.name))?;
        Ok(Copy {
            cer: ocr::best_cer(&n.jpeg, &p.text)?,
            n,
        })
    })
    .into_iter()
    .collect()
}

/// Seconds per photo of normalizing the corpus under `target` on this one thread.
fn seconds_each(photos: &[Photo], target: Target, runs: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..runs {
        for p in photos {
            normalize(&p.bytes, target).map_err(|e| anyhow::anyhow!("{}: {e}", p.name))?;
        }
    }
    Ok(start.elapsed().as_secs_f64() / (runs * photos.len()) as f64)
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n.max(1) as f64
}

fn print_table(photos: &[Photo], whole: &[Copy], econ: &[Copy]) {
    println!("| photo | original | whole: pixels, tokens, record, CER | economy: pixels, tokens, record, CER |");
    println!("| --- | --- | --- | --- |");
    let cell = |c: &Copy| {
        format!(
            "{}x{}, {}, {:.0} KB, {:.3}",
            c.n.width,
            c.n.height,
            tokens(&c.n),
            record_bytes(&c.n) as f64 / 1e3,
            c.cer
        )
    };
    for ((p, w), e) in photos.iter().zip(whole).zip(econ) {
        println!(
            "| {} | {:.2} MB | {} | {} |",
            p.name,
            p.bytes.len() as f64 / 1e6,
            cell(w),
            cell(e)
        );
    }
}

/// The economy copy judged photo by photo against the whole photo: no photo's CER may worsen
/// by more than 0.02, nor the mean by more than 0.01 (a mean alone hides a photo that reads
/// far worse behind one that improves).
fn judge(photos: &[Photo], whole: &[Copy], econ: &[Copy]) -> String {
    let deltas: Vec<(&str, f64)> = photos
        .iter()
        .zip(whole.iter().zip(econ))
        .map(|(p, (w, e))| (p.name, e.cer - w.cer))
        .collect();
    let worse: Vec<String> = deltas
        .iter()
        .filter(|(_, d)| *d > 0.02)
        .map(|(n, d)| format!("{n}:{d:+.3}"))
        .collect();
    let (worst, delta) = deltas
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or(("-", 0.0));
    let mean_delta = mean(deltas.iter().map(|(_, d)| *d));
    format!(
        "judge: photos={} worse_by_over_0.02={} mean_delta={mean_delta:+.3} worst={worst}:{delta:+.3} verdict={} [{}]",
        deltas.len(),
        worse.len(),
        if worse.is_empty() && mean_delta <= 0.01 { "pass" } else { "fail" },
        worse.join(" ")
    )
}

fn summary(whole: &[Copy], econ: &[Copy]) -> String {
    let tok = |c: &[Copy]| mean(c.iter().map(|c| tokens(&c.n) as f64));
    let bytes = |c: &[Copy]| mean(c.iter().map(|c| record_bytes(&c.n) as f64));
    let cer = |c: &[Copy]| mean(c.iter().map(|c| c.cer));
    format!(
        "tokens: images={} tokens_per_image={:.0} baseline_tokens={:.0} bytes_per_record={:.0} baseline_bytes={:.0} cer={:.3} baseline_cer={:.3}",
        econ.len(),
        tok(econ),
        tok(whole),
        bytes(econ),
        bytes(whole),
        cer(econ),
        cer(whole),
    )
}

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        ocr::available(),
        "tesseract is missing: apt-get install tesseract-ocr (Debian's, 5.x)"
    );
    let runs = std::env::var("BO_TOKENS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut shots = corpus::shots();
    shots.extend(corpus::unseen_shots());
    let mut photos = par_map(&shots, |s| corpus::photograph(s, 4032));
    photos.push(corpus::screenshot(0, 1170, 2532));
    println!(
        "Corpus: {} photos ({} receipts on a table, a close-up, a screenshot); Tesseract {}\n",
        photos.len(),
        photos.iter().filter(|p| p.has_table).count(),
        ocr::MODES.map(|m| format!("--psm {m}")).join(" / ")
    );
    let whole = measure(&photos, Target::for_family(&Claude, Policy::Whole))?;
    let econ = measure(&photos, economy(TEXT_PX))?;
    print_table(&photos, &whole, &econ);
    println!("\n{}", judge(&photos, &whole, &econ));
    if runs > 0 {
        let w = seconds_each(&photos, Target::for_family(&Claude, Policy::Whole), runs)?;
        let e = seconds_each(&photos, economy(TEXT_PX), runs)?;
        println!(
            "\nspeed, one core, {runs} runs of the corpus: economy {:.1} photos/s ({:.0} ms each), whole {:.1} photos/s ({:.0} ms each)\n",
            1.0 / e,
            e * 1e3,
            1.0 / w,
            w * 1e3
        );
    }
    if let Ok(sweep) = std::env::var("BO_TOKENS_SWEEP") {
        // `px` or `px:quality`.
        for item in sweep.split(',') {
            let mut parts = item.split(':').map(|v| v.trim().parse::<u32>());
            let (Some(Ok(px)), quality) = (parts.next(), parts.next()) else {
                continue;
            };
            let quality = quality.and_then(Result::ok).map_or(QUALITY, |q| q as u8);
            let at = measure(
                &photos,
                Target {
                    quality,
                    ..economy(px)
                },
            )?;
            let cers: Vec<String> = at.iter().map(|c| format!("{:.2}", c.cer)).collect();
            println!(
                "text_px={px} q={quality} {} [{}]",
                summary(&whole, &at),
                cers.join(" ")
            );
        }
    }
    if let Ok(path) = std::env::var("BO_TOKENS_PICTURE") {
        picture(&photos, &whole, &econ, &path)?;
        println!("picture: {path}");
    }
    println!("{}", summary(&whole, &econ));
    Ok(())
}

/// Three photos (upright, shrunk) next to what the model receives under the economy policy,
/// both at the same height, as a JPEG.
fn picture(photos: &[Photo], whole: &[Copy], econ: &[Copy], path: &str) -> anyhow::Result<()> {
    const HEIGHT: u32 = 560;
    let picks = [
        "short-mono-portrait",
        "30-narrow-blur",
        "30-liberation-landscape",
    ];
    let mut tiles = Vec::new();
    for name in picks {
        let i = photos
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| anyhow::anyhow!("no photo {name}"))?;
        let photo = decode(&whole[i].n)?;
        let model = decode(&econ[i].n)?;
        for img in [photo, model] {
            let w = img.width() * HEIGHT / img.height();
            tiles.push(image::imageops::resize(
                &img,
                w,
                HEIGHT,
                image::imageops::FilterType::Triangle,
            ));
        }
    }
    let gap = 24;
    let width: u32 = tiles.iter().map(|t| t.width() + gap).sum::<u32>() + gap;
    let mut canvas =
        image::RgbImage::from_pixel(width, HEIGHT + 2 * gap, image::Rgb([255, 255, 255]));
    let mut x = gap;
    for t in &tiles {
        image::imageops::overlay(&mut canvas, t, i64::from(x), i64::from(gap));
        x += t.width() + gap;
    }
    // A JPEG (the photos are photos): a fifth of the PNG's bytes in the repository.
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 85).encode(
        canvas.as_raw(),
        u16::try_from(canvas.width())?,
        u16::try_from(canvas.height())?,
        jpeg_encoder::ColorType::Rgb,
    )?;
    std::fs::write(path, jpeg)?;
    Ok(())
}

/// A normalized copy's pixels as RGB (a grey copy's grey repeated).
fn decode(n: &Normalized) -> anyhow::Result<image::RgbImage> {
    let raw = jpeg_decoder::Decoder::new(std::io::Cursor::new(&n.jpeg)).decode()?;
    let rgb = if raw.len() == (n.width * n.height) as usize {
        raw.iter().flat_map(|&g| [g, g, g]).collect()
    } else {
        raw
    };
    image::RgbImage::from_raw(n.width, n.height, rgb).ok_or_else(|| anyhow::anyhow!("short pixels"))
}
