//! The legibility measure: Tesseract (Debian's `tesseract-ocr`) reads an image, and the
//! character error rate is the edit distance (Levenshtein, `strsim`) from the known text over
//! the known text's length, with runs of whitespace counted as one space on both sides.
//! Tesseract is tried in two page-segmentation modes (4: a single column of text of variable
//! sizes; 6: a single uniform block), and the better reading counts: one of them can read
//! nothing on a tilted receipt (image-facts.md).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The page-segmentation modes tried.
pub const MODES: [u8; 2] = [4, 6];

/// True when `tesseract` runs here (the local model's own probe).
pub fn available() -> bool {
    shared::adapters::embedded::local_model::tesseract_installed()
}

/// What Tesseract reads in `image` (any format Leptonica reads) in mode `psm`.
pub fn read(image: &[u8], psm: u8) -> anyhow::Result<String> {
    let mut child = Command::new("tesseract")
        .args(["stdin", "stdout", "-l", "eng", "--psm", &psm.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let bytes = image.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    anyhow::ensure!(out.status.success(), "tesseract failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn squash(text: &str) -> Vec<char> {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect()
}

/// The character error rate of `read` against `known` (0 is perfect; at most 1).
pub fn cer(known: &str, read: &str) -> f64 {
    let (k, r) = (squash(known), squash(read));
    if k.is_empty() {
        return if r.is_empty() { 0.0 } else { 1.0 };
    }
    let distance = strsim::generic_levenshtein(&k, &r);
    (distance as f64 / k.len() as f64).min(1.0)
}

/// The better character error rate of the modes in [`MODES`].
pub fn best_cer(image: &[u8], known: &str) -> anyhow::Result<f64> {
    let mut best = 1.0f64;
    for psm in MODES {
        best = best.min(cer(known, &read(image, psm)?));
    }
    Ok(best)
}
