//! The models this service is set up for by default: current Claude and Nova models that
//! Amazon Bedrock runs as batch inference, each reached through a US system inference profile.
//!
//! Sources, read 2026-11-30 (see `docs/notes/bedrock-research-2026-11-30.md`):
//! - "Supported Regions and models for batch inference" (Amazon Bedrock User Guide,
//!   batch-inference-supported.html): Nova Lite/Micro/Pro run batch in-Region only in
//!   us-east-1 and us-gov-west-1, and through an inference profile in the US, EU and APAC
//!   Regions; newer models are listed for batch through inference profiles.
//! - "Model lifecycle" (model-lifecycle.html): Claude 3 Haiku (`…claude-3-haiku-20240307…`)
//!   reached end of life on 2026-09-10 and Claude 3.5 Sonnet (`…claude-3-5-sonnet-20240620…`)
//!   in 2026 too (calls to an EOL model fail); Claude Sonnet 4.5 is Legacy since 2026-10-08
//!   (EOL 2027-04-08); Claude Haiku 4.5 and Nova Lite are Active.
//! - The model cards' inference-profile ids (`us.`, `eu.`, `jp.`, `au.`, `global.` for Claude
//!   Haiku 4.5) and "Global cross-Region inference" (batch inference is supported through
//!   `global.` profiles).
//!
//! Check the batch page for your Region before deploying, and set `ALLOWED_MODEL_IDS`.

/// One model of the catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatalogModel {
    /// The foundation model id (no geography prefix).
    pub id: &'static str,
    /// The record family that builds its records.
    pub family: &'static str,
    /// Active or Legacy (with its end of life), per the "Model lifecycle" page.
    pub lifecycle: &'static str,
    /// On-demand list price, USD per million input and output tokens (us-east-1, check).
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// "Batch inference job size (in GB) for {model}", where it differs from the common 5 GB.
    pub job_gb: Option<u64>,
}

/// When the catalog's prices were read, and where: Amazon Bedrock's pricing page (on-demand,
/// us-east-1, per million tokens); batch is half of it ("Batch inference is priced at 50% of
/// on-demand" on the same page). Prices change: check them, and set `MODEL_PRICES` for yours.
pub const PRICES_AS_OF: &str = "2026-11-30";
pub const PRICES_SOURCE: &str = "https://aws.amazon.com/bedrock/pricing/";

pub const CATALOG: &[CatalogModel] = &[
    CatalogModel {
        id: "anthropic.claude-haiku-4-5-20251001-v1:0",
        family: "claude",
        lifecycle: "Active",
        input_per_mtok: 1.0,
        output_per_mtok: 5.0,
        job_gb: None,
    },
    CatalogModel {
        id: "anthropic.claude-sonnet-4-5-20250929-v1:0",
        family: "claude",
        lifecycle: "Legacy (EOL 2027-04-08)",
        input_per_mtok: 3.0,
        output_per_mtok: 15.0,
        job_gb: None,
    },
    CatalogModel {
        id: "amazon.nova-lite-v1:0",
        family: "nova",
        lifecycle: "Active",
        input_per_mtok: 0.06,
        output_per_mtok: 0.24,
        job_gb: None,
    },
    CatalogModel {
        id: "amazon.nova-pro-v1:0",
        family: "nova",
        lifecycle: "Active",
        input_per_mtok: 0.8,
        output_per_mtok: 3.2,
        job_gb: Some(100),
    },
];

/// `ALLOWED_MODEL_IDS` by default (the first is the default model): a current Claude and a
/// Nova model, each through the US system inference profile (profiles reach the newer models
/// for batch, and the `us.` profile works from every US Region the stack may run in).
pub const DEFAULT_MODELS: &[&str] = &[
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.amazon.nova-lite-v1:0",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::family::for_model;
    use crate::domain::ids::ModelId;

    #[test]
    fn when_reading_the_catalog_should_name_families_that_build_its_models() {
        for m in CATALOG {
            let id = ModelId::parse(m.id).expect("valid id");
            assert_eq!(for_model(&id).map(|f| f.name()), Some(m.family), "{}", m.id);
        }
        for d in DEFAULT_MODELS {
            let id = ModelId::parse(d).expect("valid id");
            let base = crate::domain::family::base_model_id(&id).expect("base");
            assert!(
                CATALOG.iter().any(|m| m.id == base),
                "{d} is in the catalog"
            );
        }
    }

    #[test]
    fn when_choosing_defaults_should_offer_no_model_past_its_end_of_life() {
        for d in DEFAULT_MODELS {
            assert!(!d.contains("claude-3-haiku-20240307"), "{d}");
            assert!(!d.contains("claude-3-5-sonnet-20240620"), "{d}");
        }
    }
}
