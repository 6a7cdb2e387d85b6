//! Bedrock output lines and model text on arbitrary input: parsing a line, turning it into a
//! per-image result and reading receipt fields must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::domain::bedrock::{ManifestSummary, OutputLine};
use shared::domain::ids::{ObjectKey, RecordId};
use shared::domain::results::{parse_receipt, ImageResult};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(line) = OutputLine::parse(text) {
        let _ = line.record_id();
        let result = ImageResult::from_output(
            &line,
            RecordId::parse("r-1").expect("valid"),
            0,
            ObjectKey::parse("uploads/u/a.png").expect("valid"),
        );
        let _ = serde_json::to_string(&result);
    }
    let _ = parse_receipt(text);
    let _ = serde_json::from_str::<ManifestSummary>(text);
});
