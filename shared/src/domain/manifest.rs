//! Manifest rules: how an image becomes one JSONL record, where parts and outputs live, and
//! which images are refused before they reach Bedrock.

use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, JobId};

/// Versioned prompt templates; the version is part of the intent's payload.
pub const DEFAULT_PROMPT_VERSION: &str = "receipt-v2";

pub fn prompt(version: &str) -> Option<&'static str> {
    match version {
        // The schema is asked for in the prompt: AWS's batch pages disagree on whether a batch
        // record may carry Claude's `tools` / `tool_choice` or Bedrock's structured-output
        // fields (one copy of the batch inference page says batch "does not support tool
        // calling (function calling) or structured output", another that only Converse-type
        // jobs refuse `toolConfig`), so the safe reading asks in words and validates every
        // answer against `schemas/receipt-v2.schema.json` itself (`domain::receipt`).
        crate::domain::receipt::RECEIPT_V2 => Some(
            "You are reading a photo of a shopping receipt. Reply with one JSON object and \
             nothing else, with exactly these keys (receipt-v2): \"merchant\" ({\"name\", \
             \"address\", \"phone\"}), \"date\" (YYYY-MM-DD), \"time\" (HH:MM), \
             \"currency\" (ISO 4217 code), \"subtotal\", \"taxes\" (array of {\"rate\" \
             (percent), \"amount\", \"included\" (true when already in the prices)}), \
             \"tip\", \"discount\", \"total\", \"paymentMethod\", \"items\" (array of \
             {\"description\", \"quantity\", \"unitPrice\", \"amount\"}). Amounts are \
             numbers with the currency's decimals (none for JPY). Use null for what you cannot \
             read, and [] when there are no taxes or items.",
        ),
        "receipt-v1" => Some(
            "You are reading a photo of a shopping receipt. Reply with one JSON object and \
             nothing else, with these keys: \"merchant\" (string), \"date\" (YYYY-MM-DD), \
             \"total\" (number), \"currency\" (ISO 4217 code), \"items\" (array of \
             {\"description\": string, \"amount\": number}). Use null for what you cannot read.",
        ),
        _ => None,
    }
}

/// Bedrock's practical cap for one inline image: 3.75 MB raw (5 MB once base64).
pub const MAX_IMAGE_BYTES: usize = 3_932_160;
/// Claude's cap on either side of an image.
pub const MAX_IMAGE_SIDE: u32 = 8000;

pub use crate::domain::media::MediaType;

/// Why an image cannot go into a manifest, checked on what Bedrock is sent (the normalized
/// copy): its type by content, its size (3.75 MB) and its sides (8000 px), the dimensions read
/// by the decoders' own header parsers ([`crate::domain::normalize::dimensions`]).
pub fn check_image(bytes: &[u8]) -> Result<MediaType, String> {
    let media = MediaType::sniff(bytes)
        .ok_or_else(|| "not a supported image (jpeg, png, gif or webp by content)".to_string())?;
    let size = bytes.len();
    if size > MAX_IMAGE_BYTES {
        return Err(format!(
            "image is {size} bytes; the limit is {MAX_IMAGE_BYTES} (3.75 MB)"
        ));
    }
    match crate::domain::normalize::dimensions(bytes) {
        Some((w, h)) if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE => Err(format!(
            "image is {w}x{h} px; the limit is {MAX_IMAGE_SIDE} px a side"
        )),
        Some((0, _)) | Some((_, 0)) | None => Err("image header is corrupt or truncated".into()),
        Some(_) => Ok(media),
    }
}

pub use crate::domain::plan::{Place, Splitter};

/// Bedrock's record ids. The user guide's record template is
/// `{"recordId": "11 character alphanumeric string", "modelInput": {...}}` ("Format and upload
/// your batch inference data", Amazon Bedrock User Guide), and AWS's own samples generate
/// exactly that (`REC` + 8 digits); no looser rule is published, so ours are 11 ASCII letters
/// and digits, unique within a job, and map back to our own [`RecordId`](crate::domain::ids::RecordId)s:
/// - `REC{image index:08}`: an intent's own record (the intent lists its images by index);
/// - `SHR{n:08}`: the n-th record of a shared job (its record map says whose it is);
/// - `PAD{n:08}`: padding (its answer is dropped).
pub const BEDROCK_RECORD_ID_LEN: usize = 11;
const IMAGE_PREFIX: &str = "REC";
const SHARED_PREFIX: &str = "SHR";
/// Record ids of padding records start with this; their answers are dropped.
pub const PAD_PREFIX: &str = "PAD";

/// True for a record id Bedrock's template allows: 11 ASCII letters and digits.
pub fn is_bedrock_record_id(id: &str) -> bool {
    id.len() == BEDROCK_RECORD_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The Bedrock record id of an intent's image `index` (below 10^8: a job holds 50,000).
pub fn image_record_id(index: usize) -> String {
    format!("{IMAGE_PREFIX}{index:08}")
}

/// The image index an intent's own record id stands for.
pub fn image_index_of(record_id: &str) -> Option<usize> {
    let digits = record_id.strip_prefix(IMAGE_PREFIX)?;
    (is_bedrock_record_id(record_id) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The Bedrock record id of a shared job's `n`-th record.
pub fn shared_record_id(n: u64) -> String {
    format!("{SHARED_PREFIX}{n:08}")
}

/// The record's number in its job: an intent's image index, or a shared job's `n`; None for
/// padding and for ids of neither shape.
pub fn record_number(record_id: &str) -> Option<usize> {
    let digits = record_id.strip_prefix(SHARED_PREFIX);
    match digits {
        Some(d) if is_bedrock_record_id(record_id) && d.bytes().all(|b| b.is_ascii_digit()) => {
            d.parse().ok()
        }
        _ => image_index_of(record_id),
    }
}

/// A padding record (below-minimum policy `pad`, or a shared job that cancels took under the
/// minimum): the family's smallest valid request, one output token.
pub fn pad_record(family: &dyn crate::domain::family::RecordFamily, n: u64) -> String {
    crate::domain::family::line(&format!("{PAD_PREFIX}{n:08}"), family.pad_input())
}

/// `line` (one JSONL record, newline included) with its `recordId` replaced by `id`. Our own
/// lines start `{"recordId":"…",`, so the id is swapped without parsing a line that may carry
/// megabytes of base64; any other line is parsed and written again.
pub fn with_record_id(line: &str, id: &str) -> Result<String, serde_json::Error> {
    const HEAD: &str = "{\"recordId\":\"";
    if let Some(rest) = line.strip_prefix(HEAD) {
        if let Some(end) = rest.find('"') {
            if rest[..end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Ok(format!("{HEAD}{id}{}", &rest[end..]));
            }
        }
    }
    let mut value: serde_json::Value = serde_json::from_str(line)?;
    value["recordId"] = serde_json::Value::String(id.to_owned());
    let mut out = value.to_string();
    out.push('\n');
    Ok(out)
}

/// Where job `job_no` of an intent reads its input: a folder, so one job can read many parts.
pub fn job_input_prefix(bucket: &BucketName, job: &JobId, job_no: u32) -> S3Uri {
    S3Uri::prefix(bucket, &format!("manifests/{job}/j{job_no:03}"))
}

pub fn part_file_name(part: u32) -> String {
    format!("part-{part:05}.jsonl")
}

/// The folder of the `k`-th re-run job of job `parent`'s remainder on attempt `attempt`:
/// `{base}/{jobId}/r{parent}a{attempt}j{k}/`. Keyed on the parent, not on the new job's number,
/// so two jobs of one intent ending at once never plan into the same folder.
pub fn rerun_prefix(
    bucket: &BucketName,
    base: &str,
    job: &JobId,
    (parent, attempt, k): (u32, u32, u32),
) -> S3Uri {
    S3Uri::prefix(
        bucket,
        &format!("{base}/{job}/r{parent:03}a{attempt}j{k:02}"),
    )
}

/// Where Bedrock writes job `job_no`'s outputs (it adds `{12-char job id}/`).
pub fn job_output_prefix(bucket: &BucketName, job: &JobId, job_no: u32) -> S3Uri {
    S3Uri::prefix(bucket, &format!("outputs/{job}/j{job_no:03}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real (encoded) PNG of `w`x`h`.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::new(w, h);
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .expect("png");
        out
    }

    #[test]
    fn when_bytes_are_known_formats_should_sniff_by_content() {
        assert_eq!(
            MediaType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::sniff(&png(1, 1)), Some(MediaType::Png));
        assert_eq!(
            MediaType::sniff(b"GIF89a\x01\0\x01\0"),
            Some(MediaType::Gif)
        );
        assert_eq!(
            MediaType::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        assert_eq!(MediaType::sniff(b"%PDF-1.7"), None);
    }

    #[test]
    fn when_image_breaks_a_limit_should_say_which() {
        assert!(check_image(&png(640, 480)).is_ok());
        assert!(check_image(&png(8001, 10))
            .expect_err("too wide")
            .contains("8001x10"));
        assert!(check_image(b"hello")
            .expect_err("text")
            .contains("not a supported image"));
        let mut big = png(10, 10);
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert!(check_image(&big).expect_err("too big").contains("bytes"));
        assert!(check_image(&png(10, 10)[..18])
            .expect_err("truncated")
            .contains("corrupt"));
    }

    #[test]
    fn when_jpeg_has_a_header_should_read_its_dimensions_with_the_decoder() {
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(
                &[0u8; 200 * 300 * 3],
                200,
                300,
                jpeg_encoder::ColorType::Rgb,
            )
            .expect("encode");
        assert_eq!(
            crate::domain::normalize::dimensions(&jpeg),
            Some((200, 300))
        );
        assert_eq!(check_image(&jpeg), Ok(MediaType::Jpeg));
    }

    #[test]
    fn when_record_is_built_should_be_one_json_line_with_base64_image() {
        let rid = image_record_id(0);
        use crate::domain::family::{Claude, ImageRef, RecordFamily as _};
        let line = Claude.record(
            &rid,
            MediaType::Png,
            ImageRef::Bytes(b"abc"),
            "read it",
            256,
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(v["recordId"], rid.as_str());
        assert!(is_bedrock_record_id(&rid), "{rid}");
        let img = &v["modelInput"]["messages"][0]["content"][0]["source"];
        assert_eq!(img["data"], "YWJj");
        assert_eq!(img["media_type"], "image/png");
        assert_eq!(v["modelInput"]["anthropic_version"], "bedrock-2023-05-31");
    }

    #[test]
    fn when_naming_records_should_use_bedrocks_11_alphanumerics_and_map_back() {
        for id in [
            image_record_id(0),
            image_record_id(49_999),
            shared_record_id(12),
            format!("{PAD_PREFIX}{:08}", 3),
        ] {
            assert!(is_bedrock_record_id(&id), "{id}");
        }
        assert_eq!(image_index_of(&image_record_id(4_321)), Some(4_321));
        assert_eq!(image_index_of(&shared_record_id(4)), None);
        assert_eq!(record_number(&shared_record_id(4)), Some(4));
        assert_eq!(record_number(&image_record_id(30)), Some(30));
        assert_eq!(record_number("PAD00000001"), None);
        assert_eq!(image_index_of("bj-000000000000000000000001-000007"), None);
        assert!(!is_bedrock_record_id("bj-000000000000000000000001-000007"));
        assert!(!is_bedrock_record_id("REC0000001-"));
    }

    #[test]
    fn when_swapping_a_record_id_should_keep_the_rest_of_the_line() {
        let line = "{\"recordId\":\"REC00000001\",\"modelInput\":{\"x\":\"\\\"y\"}}\n";
        let swapped = with_record_id(line, "SHR00000009").expect("json");
        let v: serde_json::Value = serde_json::from_str(&swapped).expect("json");
        assert_eq!(v["recordId"], "SHR00000009");
        assert_eq!(v["modelInput"]["x"], "\"y");
        assert!(swapped.ends_with('\n'));
        let other = "{\"modelInput\":{},\"recordId\":\"old\"}";
        let v: serde_json::Value =
            serde_json::from_str(&with_record_id(other, "SHR00000001").expect("json"))
                .expect("json");
        assert_eq!(v["recordId"], "SHR00000001");
    }
}
