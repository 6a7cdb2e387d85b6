//! The embedded backend's stand-in for the model (`BO_LOCAL_MODEL`): what the Bedrock
//! emulators answer for a receipt photo.
//!
//! - `tesseract`: the record's actual image is read by Tesseract (Debian's `tesseract-ocr`, run
//!   as a process: `tesseract stdin stdout --psm 4`, a single column of text, then `--psm 6`,
//!   a uniform block, when the first reading has no total), and the text is turned into a
//!   `receipt-v2` answer by the rules in [`rules`]. So `demo` and `serve` over a user's own
//!   photos answer that receipt's merchant, date and total. **It stands in for the model; it is
//!   not the model**: a vision model reads far more than an OCR and a page of rules.
//! - `synthetic`: an answer derived from a hash of the record (the emulators' original answers:
//!   "Emulated Mart"), instant and deterministic, for tests and for machines without
//!   Tesseract.
//!
//! The default is `tesseract` when it is installed, else `synthetic` (said once, on the
//! command line). Tests choose explicitly: an [`crate::adapters::embedded`] backend opened
//! with default options is synthetic.

pub mod rules;

use std::process::Stdio;
use tokio::io::AsyncWriteExt as _;

/// The variable that chooses the local model.
pub const LOCAL_MODEL_ENV: &str = "BO_LOCAL_MODEL";

/// Who answers for the model on the embedded backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LocalModel {
    /// Answers derived from a hash of the record.
    #[default]
    Synthetic,
    /// Tesseract reads the image; rules fill the receipt.
    Tesseract,
}

impl std::str::FromStr for LocalModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "synthetic" => Ok(Self::Synthetic),
            "tesseract" => Ok(Self::Tesseract),
            other => Err(format!(
                "{LOCAL_MODEL_ENV} must be tesseract or synthetic, not {other:?}"
            )),
        }
    }
}

impl LocalModel {
    /// The model `BO_LOCAL_MODEL` names, else tesseract when installed; and a line to say once
    /// when the answers will be synthetic for want of Tesseract.
    pub fn choose(value: Option<&str>) -> Result<(Self, Option<String>), String> {
        match value {
            Some(v) => Ok((v.parse()?, None)),
            None if tesseract_installed() => Ok((Self::Tesseract, None)),
            None => Ok((
                Self::Synthetic,
                Some(
                    "note: tesseract is not installed, so the local model's answers are \
                     synthetic (apt-get install tesseract-ocr to read the photos)"
                        .into(),
                ),
            )),
        }
    }

    /// The receipt-v2 answer this model reads from `image`; None when it is synthetic (the
    /// caller answers from the record's hash) or Tesseract cannot run.
    pub async fn read(self, image: &[u8]) -> Option<serde_json::Value> {
        if self == Self::Synthetic {
            return None;
        }
        let mut best: Option<serde_json::Value> = None;
        for psm in ["4", "6"] {
            let text = match tesseract(image, psm).await {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(error = %e, "tesseract failed; answering with nulls");
                    String::new()
                }
            };
            let answer = rules::receipt_from_text(&text);
            let has_total = !answer["total"].is_null();
            if best.is_none() || has_total {
                best = Some(answer);
            }
            if has_total {
                break;
            }
        }
        best
    }
}

/// True when `tesseract` runs here.
pub fn tesseract_installed() -> bool {
    std::process::Command::new("tesseract")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Tesseract's text of `image` (any format Leptonica reads) in page-segmentation mode `psm`.
/// One thread per process (`OMP_THREAD_LIMIT=1`): records are read side by side instead.
async fn tesseract(image: &[u8], psm: &str) -> std::io::Result<String> {
    let mut child = tokio::process::Command::new("tesseract")
        .args(["stdin", "stdout", "-l", "eng", "--psm", psm])
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("tesseract has no stdin"))?;
    let bytes = image.to_vec();
    let writer = tokio::spawn(async move { stdin.write_all(&bytes).await });
    let out = child.wait_with_output().await?;
    writer.await.map_err(std::io::Error::other)??;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "tesseract exited with {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A receipt-v2 answer in receipt-v1's shape (`merchant` a string, items of description and
/// amount), for a record asked with the older prompt.
pub fn as_receipt_v1(v2: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "merchant": v2["merchant"]["name"],
        "date": v2["date"],
        "total": v2["total"],
        "currency": v2["currency"],
        "items": v2["items"].as_array().map(|items| items.iter().map(|i| serde_json::json!({
            "description": i["description"], "amount": i["amount"],
        })).collect::<Vec<_>>()).unwrap_or_default(),
    })
}
