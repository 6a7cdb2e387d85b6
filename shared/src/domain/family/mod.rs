//! Model families: how a model wants its batch records built and how it answers. The family,
//! and so the record shape, is chosen by model id. Adding a family is one new file in this
//! folder (an implementation of [`RecordFamily`]) and its line in [`FAMILIES`].

mod claude;
mod nova;

pub use claude::Claude;
pub use nova::Nova;

use crate::domain::bedrock::S3Uri;
use crate::domain::ids::ModelId;
use crate::domain::media::MediaType;
use serde::Serialize;

/// How a family's records carry the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// The bytes, base64, inside the record (Claude).
    Inline,
    /// A reference to an S3 object in the job's own input folder (Nova): the manifest builder
    /// copies each image there (server-side) to meet Bedrock's same-folder rule.
    S3Location,
}

/// The image a record is built around.
#[derive(Debug, Clone, Copy)]
pub enum ImageRef<'a> {
    Bytes(&'a [u8]),
    S3(&'a S3Uri),
}

/// What a model said, whatever its answer's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAnswer {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

pub trait RecordFamily: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// True for the model ids (without a geography prefix) this family builds records for.
    fn serves(&self, base_model_id: &str) -> bool;
    fn image_source(&self) -> ImageSource;
    /// The long edge, in pixels, images are normalized to for this family's models: the most
    /// the model reads (a larger image only costs bytes), see `domain::normalize`.
    fn image_long_edge(&self) -> u32;
    /// The most pixels an image is given for this family's models (none by default).
    fn image_max_pixels(&self) -> u64 {
        u64::MAX
    }
    /// One JSONL line, newline included, with Bedrock record id `record_id` (11
    /// alphanumerics, see [`crate::domain::manifest::image_record_id`]). `image` is `Bytes` for
    /// an inline family and `S3` for an S3Location one.
    fn record(
        &self,
        record_id: &str,
        media: MediaType,
        image: ImageRef<'_>,
        prompt: &str,
        max_tokens: u32,
    ) -> String;
    /// The text and token counts of a `modelOutput` (or InvokeModel answer) of this family;
    /// None if it is not this family's shape.
    fn read_output(&self, output: &serde_json::Value) -> Option<ModelAnswer>;
    /// The answer this family's models give, built from its parts (the emulators use it).
    fn answer(&self, text: &str, input_tokens: u64, output_tokens: u64) -> serde_json::Value;
    /// This family's smallest valid request (one output token): the body of a padding record.
    fn pad_input(&self) -> serde_json::Value;
}

/// Every family, in the order model ids are matched.
pub static FAMILIES: &[&dyn RecordFamily] = &[&Claude, &Nova];

/// Geography prefixes of Bedrock's system-defined (cross-region) inference profiles, as the
/// user guide lists them ("Supported Regions and models for inference profiles").
pub const GEO_PREFIXES: &[&str] = &["us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"];

/// The foundation model id a model id stands for, when it can be told from the id itself:
/// - a plain model id (`anthropic.claude-haiku-4-5-20251001-v1:0`) is itself;
/// - a system inference profile id (`us.…`, `global.…`, any of [`GEO_PREFIXES`]) without its
///   geography;
/// - a system inference-profile ARN (`arn:aws:bedrock:<region>:<account>:inference-profile/<id>`)
///   or a foundation-model ARN (`…::foundation-model/<id>`), from the id it ends with.
///
/// An application inference profile (`…:application-inference-profile/<random id>`) does not
/// name its model: None (its family comes from configuration, see [`for_model_in`]).
pub fn base_model_id(model: &ModelId) -> Option<&str> {
    let id = model.as_str();
    let id = match id.strip_prefix("arn:") {
        None => id,
        Some(arn) => {
            let resource = arn.splitn(5, ':').nth(4)?;
            let (kind, rest) = resource.split_once('/')?;
            match kind {
                "inference-profile" | "foundation-model" => rest,
                _ => return None,
            }
        }
    };
    Some(match id.split_once('.') {
        Some((head, rest)) if GEO_PREFIXES.contains(&head) => rest,
        _ => id,
    })
}

/// The family that builds records for `model`, from the id alone (see [`base_model_id`]).
pub fn for_model(model: &ModelId) -> Option<&'static dyn RecordFamily> {
    for_model_in(model, &std::collections::BTreeMap::new())
}

/// The family that builds records for `model`: `configured` first (model id or ARN -> family
/// name, `MODEL_FAMILIES`; the only way to know an application inference profile's), then the
/// id itself.
pub fn for_model_in(
    model: &ModelId,
    configured: &std::collections::BTreeMap<String, String>,
) -> Option<&'static dyn RecordFamily> {
    if let Some(name) = configured.get(model.as_str()) {
        return FAMILIES.iter().copied().find(|f| f.name() == name);
    }
    let base = base_model_id(model)?;
    FAMILIES.iter().copied().find(|f| f.serves(base))
}

/// Every family's name, for configuration errors.
pub fn family_names() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.name()).collect()
}

/// Reads a model's answer in whichever family's shape it comes.
pub fn read_any(output: &serde_json::Value) -> Option<ModelAnswer> {
    FAMILIES.iter().find_map(|f| f.read_output(output))
}

#[derive(Serialize)]
pub(crate) struct Record<'a, T: Serialize> {
    #[serde(rename = "recordId")]
    pub record_id: &'a str,
    #[serde(rename = "modelInput")]
    pub model_input: T,
}

/// A record as one JSONL line.
pub(crate) fn line<T: Serialize>(record_id: &str, model_input: T) -> String {
    let mut line = serde_json::to_string(&Record {
        record_id,
        model_input,
    })
    .unwrap_or_default();
    line.push('\n');
    line
}

/// Rewrites every `s3Location.uri` in a record line (a shared job moves its members' images
/// into its own input folder). Lines without one come back unchanged.
pub fn rewrite_s3_locations(
    line: &str,
    mut to: impl FnMut(&S3Uri) -> Option<S3Uri>,
) -> Result<String, serde_json::Error> {
    if !line.contains("\"s3Location\"") {
        return Ok(line.to_owned());
    }
    let mut value: serde_json::Value = serde_json::from_str(line)?;
    fn walk(v: &mut serde_json::Value, to: &mut dyn FnMut(&S3Uri) -> Option<S3Uri>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(uri) = map.get_mut("s3Location").and_then(|l| l.get_mut("uri")) {
                    if let Some(new) = uri
                        .as_str()
                        .and_then(|u| S3Uri::parse(u).ok())
                        .and_then(|u| to(&u))
                    {
                        *uri = serde_json::Value::String(new.to_string());
                    }
                }
                map.values_mut().for_each(|x| walk(x, to));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|x| walk(x, to)),
            _ => {}
        }
    }
    walk(&mut value, &mut to);
    let mut out = value.to_string();
    out.push('\n');
    Ok(out)
}

/// Every `s3Location.uri` a model input references.
pub fn s3_locations(model_input: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(u) = map
                    .get("s3Location")
                    .and_then(|l| l.get("uri"))
                    .and_then(|u| u.as_str())
                {
                    out.push(u.to_owned());
                }
                map.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(model_input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> ModelId {
        ModelId::parse(id).expect("valid")
    }

    #[test]
    fn when_choosing_by_model_id_should_find_each_family_through_any_profile_or_arn() {
        for (id, name) in [
            ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude"),
            ("amazon.nova-lite-v1:0", "nova"),
            ("amazon.nova-2-lite-v1:0", "nova"),
            ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude"),
            ("eu.amazon.nova-pro-v1:0", "nova"),
            ("apac.amazon.nova-lite-v1:0", "nova"),
            ("jp.anthropic.claude-haiku-4-5-20251001-v1:0", "claude"),
            ("au.anthropic.claude-haiku-4-5-20251001-v1:0", "claude"),
            ("ca.anthropic.claude-haiku-4-5-20251001-v1:0", "claude"),
            ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "claude"),
            ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude"),
            ("global.amazon.nova-2-lite-v1:0", "nova"),
            (
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0",
                "claude",
            ),
            (
                "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.amazon.nova-lite-v1:0",
                "nova",
            ),
            (
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
                "nova",
            ),
        ] {
            assert_eq!(for_model(&model(id)).map(|f| f.name()), Some(name), "{id}");
        }
        assert!(for_model(&model("meta.llama3-70b-instruct-v1:0")).is_none());
    }

    #[test]
    fn when_a_model_is_an_application_profile_should_take_its_family_from_configuration() {
        let app = model(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        );
        assert!(for_model(&app).is_none(), "its id names no model");
        let configured = std::collections::BTreeMap::from([(app.to_string(), "nova".to_string())]);
        assert_eq!(
            for_model_in(&app, &configured).map(|f| f.name()),
            Some("nova")
        );
    }

    #[test]
    fn when_padding_should_use_the_family_shape() {
        for f in FAMILIES {
            let line = crate::domain::manifest::pad_record(*f, 7);
            let v: serde_json::Value = serde_json::from_str(&line).expect("json");
            assert_eq!(v["recordId"], "PAD00000007");
            assert_eq!(v["modelInput"], f.pad_input(), "{}", f.name());
        }
        let nova = crate::domain::manifest::pad_record(&Nova, 0);
        assert!(
            !nova.contains("anthropic_version"),
            "a Nova pad is not Claude-shaped: {nova}"
        );
    }

    #[test]
    fn when_reading_answers_should_take_either_shape() {
        for f in FAMILIES {
            let a = f.answer("{\"total\":1}", 10, 5);
            assert_eq!(
                read_any(&a),
                Some(ModelAnswer {
                    text: "{\"total\":1}".into(),
                    input_tokens: 10,
                    output_tokens: 5
                }),
                "{}",
                f.name()
            );
        }
    }

    #[test]
    fn when_rewriting_s3_locations_should_move_only_the_uris() {
        let rid = "REC00000001";
        let from = S3Uri::parse("s3://bkt/manifests/bj-1/j001/images/000001.png").expect("uri");
        let line = Nova.record(rid, MediaType::Png, ImageRef::S3(&from), "p", 10);
        let moved = rewrite_s3_locations(&line, |u| {
            Some(S3Uri::parse(&u.to_string().replace("bj-1", "bj-2")).expect("uri"))
        })
        .expect("json");
        let v: serde_json::Value = serde_json::from_str(&moved).expect("json");
        assert_eq!(
            s3_locations(&v["modelInput"]),
            vec!["s3://bkt/manifests/bj-2/j001/images/000001.png".to_string()]
        );
        assert!(moved.ends_with('\n'));
        let claude = Claude.record(rid, MediaType::Png, ImageRef::Bytes(b"x"), "p", 10);
        assert_eq!(
            rewrite_s3_locations(&claude, |_| None).expect("same"),
            claude
        );
    }
}
