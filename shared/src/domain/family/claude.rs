//! Anthropic Claude (Messages API): images inline as base64.

use super::{line, ImageRef, ImageSource, ModelAnswer, RecordFamily};
use crate::domain::ids::RecordId;
use crate::domain::manifest::MediaType;
use base64::Engine as _;

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

    fn record(
        &self,
        record_id: &RecordId,
        media: MediaType,
        image: ImageRef<'_>,
        prompt: &str,
        max_tokens: u32,
    ) -> String {
        let ImageRef::Bytes(bytes) = image else {
            unreachable!("Claude takes images inline; the builder passes bytes")
        };
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        line(
            record_id,
            serde_json::json!({
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": max_tokens,
                "messages": [{
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": media.mime(), "data": data}},
                        {"type": "text", "text": prompt}
                    ]
                }]
            }),
        )
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
}
