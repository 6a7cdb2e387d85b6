//! What the emulators see of a record's images, as Bedrock would: each image (inline base64 or
//! an s3Location object) must be a supported image of at most 3.75 MB and 8000 px a side, or
//! the record is refused; and its input tokens are estimated from its pixels as Claude counts
//! them, about width x height / 750 (Anthropic, "Vision": image costs; image-facts.md), plus
//! about one token per 4 characters of text.

use crate::domain::manifest::check_image;
use crate::domain::normalize::dimensions;
use base64::Engine as _;

/// Tokens of one image, or why Bedrock refuses it.
pub fn image_tokens(bytes: &[u8]) -> Result<u64, String> {
    check_image(bytes).map_err(|e| format!("ValidationException: {e}"))?;
    let (w, h) = dimensions(bytes).unwrap_or_default();
    Ok(u64::from(w) * u64::from(h) / 750)
}

/// The inline images of a model input (Claude's `source.data` of type base64, Nova's
/// `source.bytes`), decoded; an undecodable one comes back empty (and is then refused).
pub fn inline_images(model_input: &serde_json::Value) -> Vec<Vec<u8>> {
    fn walk(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
        match v {
            serde_json::Value::Object(map) => {
                let base64 = map.get("type").and_then(|t| t.as_str()) == Some("base64");
                let data = match (base64, map.get("data"), map.get("bytes")) {
                    (true, Some(serde_json::Value::String(d)), _) => Some(d),
                    (_, _, Some(serde_json::Value::String(d))) => Some(d),
                    _ => None,
                };
                if let Some(d) = data {
                    let engine = base64::engine::general_purpose::STANDARD;
                    out.push(engine.decode(d).unwrap_or_default());
                }
                map.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(model_input, &mut out);
    out
}

/// Characters of the text parts (prompts, system prompts) of a model input.
pub fn text_chars(model_input: &serde_json::Value) -> usize {
    match model_input {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| match (k.as_str(), v) {
                ("text", serde_json::Value::String(t)) => t.len(),
                _ => text_chars(v),
            })
            .sum(),
        serde_json::Value::Array(items) => items.iter().map(text_chars).sum(),
        _ => 0,
    }
}

/// Input tokens of a model input whose inline images are all it carries: the images' tokens
/// (refused ones count nothing) plus the text's.
pub fn input_tokens(model_input: &serde_json::Value) -> u64 {
    input_tokens_of(&inline_images(model_input), model_input)
}

/// [`input_tokens`] with the model input's inline images already decoded.
pub fn input_tokens_of(images: &[Vec<u8>], model_input: &serde_json::Value) -> u64 {
    let tokens: u64 = images.iter().filter_map(|b| image_tokens(b).ok()).sum();
    tokens + text_chars(model_input) as u64 / 4
}

/// True when a model input's prompt asks for a receipt-v2 answer.
pub fn asks_receipt_v2(model_input: &serde_json::Value) -> bool {
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| match (k.as_str(), v) {
                ("text", serde_json::Value::String(t)) => t.contains("(receipt-v2)"),
                _ => walk(v),
            }),
            serde_json::Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    walk(model_input)
}
