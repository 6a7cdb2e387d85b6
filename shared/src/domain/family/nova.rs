//! Amazon Nova (messages-v1): images referenced in S3 (`s3Location`) instead of inlined, so a
//! record is a few hundred bytes whatever the image. Bedrock requires the referenced objects
//! to sit in the folder the job reads, so the builder copies each image into
//! `{job input}/images/` first (a server-side copy).

use crate::domain::family::{line, ImageRef, ImageSource, ModelAnswer, RecordFamily};
use crate::domain::media::MediaType;

#[derive(Debug, Clone, Copy)]
pub struct Nova;

fn format(media: MediaType) -> &'static str {
    match media {
        MediaType::Jpeg => "jpeg",
        MediaType::Png => "png",
        MediaType::Gif => "gif",
        MediaType::Webp => "webp",
    }
}

impl RecordFamily for Nova {
    fn name(&self) -> &'static str {
        "nova"
    }

    fn serves(&self, base: &str) -> bool {
        base.starts_with("amazon.nova")
    }

    fn image_source(&self) -> ImageSource {
        ImageSource::S3Location
    }

    /// Nova rescales each image to the closest of its aspect ratios, so that one side is about
    /// 896 px; its largest listed resolution is 1.8K x 900 (Amazon Nova User Guide, "Image
    /// understanding", image size information and image-to-tokens table). 1800 px keeps every
    /// pixel it reads for a receipt as tall as 1:2.
    fn image_long_edge(&self) -> u32 {
        1800
    }

    fn record(
        &self,
        record_id: &str,
        media: MediaType,
        image: ImageRef<'_>,
        prompt: &str,
        max_tokens: u32,
    ) -> String {
        // A batch record references its image in S3; an on-demand one (a re-ask) may carry it
        // inline: InvokeModel's Nova body takes `source.bytes` as a "Base64-encoded string
        // (Invoke API)" (Amazon Nova User Guide, "Image understanding examples").
        let source = match image {
            ImageRef::S3(uri) => serde_json::json!({"s3Location": {"uri": uri.to_string()}}),
            ImageRef::Bytes(bytes) => serde_json::json!({
                "bytes": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
            }),
        };
        line(
            record_id,
            serde_json::json!({
                "schemaVersion": "messages-v1",
                "messages": [{
                    "role": "user",
                    "content": [
                        {"image": {"format": format(media), "source": source}},
                        {"text": prompt}
                    ]
                }],
                "inferenceConfig": {"maxTokens": max_tokens}
            }),
        )
    }

    fn read_output(&self, output: &serde_json::Value) -> Option<ModelAnswer> {
        let blocks = output
            .get("output")?
            .get("message")?
            .get("content")?
            .as_array()?;
        Some(ModelAnswer {
            text: blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            input_tokens: output["usage"]["inputTokens"].as_u64().unwrap_or(0),
            output_tokens: output["usage"]["outputTokens"].as_u64().unwrap_or(0),
        })
    }

    fn answer(&self, text: &str, input_tokens: u64, output_tokens: u64) -> serde_json::Value {
        serde_json::json!({
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens
            }
        })
    }

    fn pad_input(&self) -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": "ok"}]}],
            "inferenceConfig": {"maxTokens": 1}
        })
    }
}
