//! Per-image results: what each receipt said, joined from Bedrock's output lines on recordId.

use crate::domain::bedrock::OutputLine;
use crate::domain::ids::{ObjectKey, RecordId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Succeeded,
    Failed,
    /// Never sent to Bedrock (missing, not an image, too large).
    Skipped,
    /// Its owner cancelled the intent while its records sat in a shared (pooled) job: the
    /// job's answer for it is discarded.
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub amount: Option<f64>,
}

/// The receipt fields the prompt asks for, when the model answered with valid JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(default)]
    pub merchant: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub total: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub items: Vec<LineItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageResult {
    pub record_id: RecordId,
    pub image_index: usize,
    pub image_key: ObjectKey,
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    /// How many times the record was sent to a model (a batch job, then any re-runs).
    #[serde(default = "one")]
    pub attempts: u32,
    /// Answered (or last tried) through on-demand `InvokeModel`, at the on-demand price, not
    /// in a batch job.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
    /// What a receipt-v2 answer was held to (`domain::receipt`), each check with its detail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::domain::receipt::Check>,
    /// True when any check failed: a person should look (set on every checked answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_review: Option<bool>,
    /// A flagged answer asked again (`app::reask`): how, which answer this result holds, and
    /// the other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reask: Option<Box<Reask>>,
    /// An exact copy of an image answered before: no model saw this one, and its fields are
    /// that image's (`domain::duplicates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Box<DuplicateOf>>,
    /// Answered, and looks like an image seen before (the same receipt photographed again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possible_duplicate_of: Option<PossibleDuplicateOf>,
}

/// The two attempts of a record asked again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reask {
    /// How it was asked again (`REASK_POLICY`): `whole` or `model:<id>`.
    pub policy: String,
    /// Which answer the result holds: the one with fewer failed checks, the first on a tie.
    pub kept: Kept,
    /// The answer not kept.
    pub other: Attempt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kept {
    First,
    Reask,
}

/// One answer of a record asked twice: the one its result does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::domain::receipt::Check>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_demand: bool,
}

impl ImageResult {
    /// How many of its checks failed (none for an unchecked answer; one more than any for a
    /// failed record, so an answer always beats no answer).
    pub fn failed_checks(&self) -> usize {
        match self.status {
            ResultStatus::Succeeded => self.checks.iter().filter(|c| !c.passed).count(),
            _ => usize::MAX,
        }
    }

    /// Of this first answer and `reask`, the one with fewer failed checks (this one on a tie),
    /// holding the other in its `reask` field; both attempts counted.
    pub fn keep_better(self, mut reask: ImageResult, policy: String) -> ImageResult {
        let reask_wins = reask.failed_checks() < self.failed_checks();
        reask.attempts = reask.attempts.max(self.attempts + 1);
        let (mut kept, other, which) = if reask_wins {
            (reask, self, Kept::Reask)
        } else {
            let attempts = reask.attempts;
            let mut first = self;
            first.attempts = attempts;
            (first, reask, Kept::First)
        };
        kept.reask = Some(Box::new(Reask {
            policy,
            kept: which,
            other: Attempt {
                status: other.status,
                text: other.text,
                error_message: other.error_message,
                checks: other.checks,
                input_tokens: other.input_tokens,
                output_tokens: other.output_tokens,
                on_demand: other.on_demand,
            },
        }));
        kept
    }
}

fn one() -> u32 {
    1
}

impl ImageResult {
    /// The result of one output line for the image it joins to.
    pub fn from_output(
        line: &OutputLine,
        record_id: RecordId,
        index: usize,
        key: ObjectKey,
        review: Option<&crate::domain::receipt::Review>,
    ) -> Self {
        let mut result = Self {
            record_id,
            image_index: index,
            image_key: key,
            status: ResultStatus::Failed,
            error_code: None,
            error_message: None,
            text: None,
            receipt: None,
            input_tokens: 0,
            output_tokens: 0,
            attempts: 1,
            on_demand: false,
            checks: Vec::new(),
            needs_review: None,
            reask: None,
            duplicate_of: None,
            possible_duplicate_of: None,
        };
        if let Some(err) = &line.error {
            result.error_code = Some(match &err.error_code {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            result.error_message = Some(err.error_message.clone());
            return result;
        }
        let Some(output) = &line.model_output else {
            result.error_message = Some("output line has neither modelOutput nor error".into());
            return result;
        };
        let Some(answer) = crate::domain::family::read_any(output) else {
            result.error_message = Some("modelOutput is in no known model's shape".into());
            return result;
        };
        let text = answer.text;
        result.input_tokens = answer.input_tokens;
        result.output_tokens = answer.output_tokens;
        let json = answer_json(&text);
        result.receipt = json.as_ref().and_then(Receipt::from_answer);
        if let Some(review) = review {
            let ctx = review.context_for(result.image_key.as_str());
            result.checks = crate::domain::receipt::check(json.as_ref(), ctx);
            result.needs_review = Some(result.checks.iter().any(|c| !c.passed));
        }
        result.text = Some(text);
        result.status = ResultStatus::Succeeded;
        result
    }

    pub fn skipped(record_id: RecordId, index: usize, key: ObjectKey, reason: &str) -> Self {
        Self {
            record_id,
            image_index: index,
            image_key: key,
            status: ResultStatus::Skipped,
            error_code: Some("rejected".into()),
            error_message: Some(reason.to_owned()),
            text: None,
            receipt: None,
            input_tokens: 0,
            output_tokens: 0,
            attempts: 0,
            on_demand: false,
            checks: Vec::new(),
            needs_review: None,
            reask: None,
            duplicate_of: None,
            possible_duplicate_of: None,
        }
    }

    /// A record of a cancelled intent whose shared job ran on: its answer is discarded.
    pub fn canceled(record_id: RecordId, index: usize, key: ObjectKey) -> Self {
        let mut r = Self::skipped(record_id, index, key, "cancelled by its owner");
        r.status = ResultStatus::Canceled;
        r.error_code = Some("canceled".into());
        r
    }

    /// True for a failure worth another attempt: throttling, a server-side error, a timeout
    /// or no output at all (the job stopped or expired before the record). A validation
    /// error (4xx other than 408 and 429) is the record's own fault and is never re-run.
    pub fn is_retryable_failure(&self) -> bool {
        if self.status != ResultStatus::Failed {
            return false;
        }
        match self.error_code.as_deref() {
            Some("no_output") => true,
            Some(code) => match code.parse::<u16>() {
                Ok(n) => n == 408 || n == 429 || n >= 500,
                Err(_) => {
                    let c = code.to_ascii_lowercase();
                    c.contains("throttl")
                        || c.contains("timeout")
                        || c.contains("internal")
                        || c.contains("unavailable")
                }
            },
            None => false,
        }
    }

    pub fn missing(record_id: RecordId, index: usize, key: ObjectKey) -> Self {
        let mut r = Self::skipped(record_id, index, key, "no output line for this record");
        r.status = ResultStatus::Failed;
        r.error_code = Some("no_output".into());
        r.attempts = 1;
        r
    }
}

/// The JSON object in the model's text: its outermost braces (models sometimes wrap JSON in
/// prose or code fences). None when there is no object.
pub fn answer_json(text: &str) -> Option<serde_json::Value> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end < start {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&text[start..=end])
        .ok()
        .filter(serde_json::Value::is_object)
}

/// The first JSON object in the model's text, read as a receipt (see [`Receipt::from_answer`]).
pub fn parse_receipt(text: &str) -> Option<Receipt> {
    answer_json(text).as_ref().and_then(Receipt::from_answer)
}

impl Receipt {
    /// The summary fields of an answer in either shape: receipt-v1's (`merchant` a string,
    /// items of description and amount) or receipt-v2's (`merchant.name`, items with quantity
    /// and unit price). None when it holds neither.
    pub fn from_answer(v: &serde_json::Value) -> Option<Self> {
        let text = |x: &serde_json::Value| x.as_str().map(str::to_owned);
        let merchant = match &v["merchant"] {
            serde_json::Value::String(name) => Some(name.clone()),
            obj => text(&obj["name"]),
        };
        let items = v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| LineItem {
                        description: text(&i["description"]),
                        amount: i["amount"].as_f64(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let receipt = Self {
            merchant,
            date: text(&v["date"]),
            total: v["total"].as_f64(),
            currency: text(&v["currency"]),
            items,
        };
        let empty = receipt.merchant.is_none()
            && receipt.date.is_none()
            && receipt.total.is_none()
            && receipt.items.is_empty();
        (!empty).then_some(receipt)
    }
}

/// How many of `results` need review (failed a receipt check).
pub fn flagged_in(results: &[ImageResult]) -> u64 {
    results
        .iter()
        .filter(|r| r.needs_review == Some(true))
        .count() as u64
}

// What a result says of the image it copies (`domain::duplicates`).

/// On a copy's result: which image it copies, and what that image's answer cost (saved here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateOf {
    pub job_id: crate::domain::ids::JobId,
    pub image_key: ObjectKey,
    pub saved_input_tokens: u64,
    pub saved_output_tokens: u64,
    /// The first was answered on-demand (its tokens are priced so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub saved_on_demand: bool,
}

/// On an answered image that looks like one seen before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PossibleDuplicateOf {
    pub job_id: crate::domain::ids::JobId,
    pub image_key: ObjectKey,
    /// Bits that differ between the two perceptual hashes (of 544).
    pub distance: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (RecordId, ObjectKey) {
        (
            RecordId::parse("r-1").expect("valid"),
            ObjectKey::parse("uploads/u/a.jpg").expect("valid"),
        )
    }

    #[test]
    fn when_model_answers_json_in_prose_should_parse_receipt() {
        let r = parse_receipt(
            "Sure! ```json\n{\"merchant\":\"Cafe\",\"total\":12.5,\"items\":[]}\n```",
        )
        .expect("receipt");
        assert_eq!(r.merchant.as_deref(), Some("Cafe"));
        assert_eq!(r.total, Some(12.5));
        assert!(parse_receipt("no json here").is_none());
    }

    #[test]
    fn when_line_is_success_should_carry_text_tokens_and_fields() {
        let line = OutputLine::parse(
            r#"{"recordId":"r-1","modelOutput":{"content":[{"type":"text","text":"{\"merchant\":\"A\"}"}],"usage":{"input_tokens":10,"output_tokens":5}}}"#,
        )
        .expect("line");
        let (rid, key) = ids();
        let r = ImageResult::from_output(&line, rid, 0, key, None);
        assert_eq!(r.status, ResultStatus::Succeeded);
        assert_eq!((r.input_tokens, r.output_tokens), (10, 5));
        assert_eq!(r.receipt.expect("fields").merchant.as_deref(), Some("A"));
    }

    #[test]
    fn when_line_is_error_should_be_failed_with_code() {
        let line = OutputLine::parse(
            r#"{"recordId":"r-1","error":{"errorCode":429,"errorMessage":"throttled"}}"#,
        )
        .expect("line");
        let (rid, key) = ids();
        let r = ImageResult::from_output(&line, rid, 0, key, None);
        assert_eq!(r.status, ResultStatus::Failed);
        assert_eq!(r.error_code.as_deref(), Some("429"));
    }
}
