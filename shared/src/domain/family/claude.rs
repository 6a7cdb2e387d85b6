//! Anthropic Claude (Messages API): images inline as base64.

use crate::domain::family::{ImageRef, ImageSource, ModelAnswer, RecordFamily};
use crate::domain::media::MediaType;

#[derive(Debug, Clone, Copy)]
pub struct Claude;

impl RecordFamily for Claude {
    fn name(&self) -> &'static str {
        "claude"
    }

    fn serves(&self, base: &str) -> bool {
        base.starts_with("anthropic.claude")
    }

    fn image_source(&self) -> ImageSource {
        ImageSource::Inline
    }

    /// Claude resizes any image whose long edge is over 1568 px before reading it (Anthropic,
    /// "Vision", image size; image-facts.md), so more pixels buy nothing.
    fn image_long_edge(&self) -> u32 {
        1568
    }

    /// Anthropic recommends "no more than 1.15 megapixels (and within 1568 pixels in both
    /// dimensions)" ("Vision", evaluate image size); an image of more than ~1,600 tokens is
    /// scaled down before it is read, so more pixels buy only bytes and latency.
    fn image_max_pixels(&self) -> u64 {
        1_150_000
    }

    fn record(
        &self,
        record_id: &str,
        media: MediaType,
        image: ImageRef<'_>,
        prompt: &str,
        max_tokens: u32,
    ) -> String {
        let ImageRef::Bytes(bytes) = image else {
            unreachable!("Claude takes images inline; the builder passes bytes")
        };
        // Written straight into one buffer: the base64 (SIMD) goes in once, with no
        // intermediate JSON value, so a record costs little more than copying its bytes.
        // Record ids and media types need no escaping; the prompt is escaped by serde_json.
        let prompt = serde_json::to_string(prompt).unwrap_or_else(|_| "\"\"".into());
        let encoded_len = bytes.len().div_ceil(3) * 4;
        let mut line = String::with_capacity(encoded_len + prompt.len() + 320);
        line.push_str("{\"recordId\":\"");
        line.push_str(record_id);
        line.push_str(
            "\",\"modelInput\":{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":",
        );
        line.push_str(&max_tokens.to_string());
        line.push_str(",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"");
        line.push_str(media.mime());
        line.push_str("\",\"data\":\"");
        base64_simd::STANDARD.encode_append(bytes, &mut line);
        line.push_str("\"}},{\"type\":\"text\",\"text\":");
        line.push_str(&prompt);
        line.push_str("}]}]}}\n");
        line
    }

    fn read_output(&self, output: &serde_json::Value) -> Option<ModelAnswer> {
        let blocks = output.get("content")?.as_array()?;
        Some(ModelAnswer {
            text: blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            input_tokens: output["usage"]["input_tokens"].as_u64().unwrap_or(0),
            output_tokens: output["usage"]["output_tokens"].as_u64().unwrap_or(0),
        })
    }

    fn answer(&self, text: &str, input_tokens: u64, output_tokens: u64) -> serde_json::Value {
        serde_json::json!({
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        })
    }

    fn pad_input(&self) -> serde_json::Value {
        serde_json::json!({
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "ok"}]}]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn when_writing_a_record_by_hand_should_equal_the_serde_built_one() {
        let rid = "REC00000007";
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let prompt = "Reply with \"JSON\"\nonly — ünïcode";
        let line = Claude.record(rid, MediaType::Jpeg, ImageRef::Bytes(&bytes), prompt, 512);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let got: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        let want = serde_json::json!({"recordId": rid, "modelInput": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 512,
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                    "data": base64::engine::general_purpose::STANDARD.encode(&bytes)}},
                {"type": "text", "text": prompt}
            ]}]
        }});
        assert_eq!(got, want);
    }
}
