//! What batches really cost: every result's own tokens at the catalog's prices, per day, what
//! was paid (batch price for records answered in batch, on-demand price for those answered
//! on-demand) against what all-batch and all-on-demand would have cost.

use crate::domain::results::{ImageResult, ResultStatus};
use crate::domain::settings::ModelPrice;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Images, tokens and USD (of a day, a user, a night).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Images a model was sent (answered or failed), not the skipped or cancelled ones.
    pub images: u64,
    pub on_demand_images: u64,
    /// Answers that failed a receipt check (`needsReview`).
    #[serde(default)]
    pub flagged: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What these tokens cost as they ran: batch at the batch price, on-demand at its own.
    pub cost_usd: f64,
    /// The same tokens had every image run in batch.
    pub batch_usd: f64,
    /// The same tokens had every image run on-demand.
    pub on_demand_usd: f64,
    /// Exact copies of earlier images, answered from them (`duplicateOf`): no model saw them.
    #[serde(default)]
    pub deduplicated: u64,
    /// The tokens their first images' answers took, not paid again.
    #[serde(default)]
    pub tokens_saved: u64,
    /// What those tokens would have cost, priced as the first image ran.
    #[serde(default)]
    pub usd_saved: f64,
}

/// One day's usage (of one user, or of every user).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayUsage {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub usage: Usage,
}

impl DayUsage {
    pub fn new(day: NaiveDate) -> Self {
        Self {
            day,
            usage: Usage::default(),
        }
    }

    /// The same day, its USD rounded to a millionth.
    pub fn rounded(self) -> Self {
        Self {
            usage: self.usage.rounded(),
            ..self
        }
    }
}

impl Usage {
    /// Adds one result at `price` (on-demand USD per million tokens); batch costs
    /// `batch_discount` of it. A re-ask to another model (`REASK_POLICY=model:<id>`) is priced
    /// at `reask_price`, that model's. Results no model saw add nothing.
    pub fn add(
        &mut self,
        r: &ImageResult,
        (price, reask_price): (Option<&ModelPrice>, Option<&ModelPrice>),
        batch_discount: f64,
    ) {
        if matches!(r.status, ResultStatus::Skipped | ResultStatus::Canceled) {
            return;
        }
        if let Some(of) = &r.duplicate_of {
            let (i, o) = (of.saved_input_tokens, of.saved_output_tokens);
            self.deduplicated += 1;
            self.tokens_saved += i + o;
            let mut saved = Usage::default();
            saved.add_tokens(i, o, of.saved_on_demand, price, batch_discount);
            self.usd_saved += saved.cost_usd;
            return;
        }
        self.images += 1;
        self.flagged += u64::from(r.needs_review == Some(true));
        self.on_demand_images += u64::from(r.on_demand);
        // A record asked twice (`app::reask`) costs both attempts, each at its own price: the
        // result holds the kept answer's tokens, `other` the one not kept.
        let Some(reask) = r.reask.as_ref() else {
            let (i, o) = (r.input_tokens, r.output_tokens);
            return self.add_tokens(i, o, r.on_demand, price, batch_discount);
        };
        let reask_price = reask_price.or(price);
        let (kept_price, other_price) = match reask.kept {
            crate::domain::results::Kept::Reask => (reask_price, price),
            crate::domain::results::Kept::First => (price, reask_price),
        };
        let other = &reask.other;
        self.add_tokens(
            r.input_tokens,
            r.output_tokens,
            r.on_demand,
            kept_price,
            batch_discount,
        );
        self.add_tokens(
            other.input_tokens,
            other.output_tokens,
            other.on_demand,
            other_price,
            batch_discount,
        );
    }

    /// Adds `input` and `output` tokens of one run, priced as it ran.
    pub fn add_tokens(
        &mut self,
        input: u64,
        output: u64,
        ran_on_demand: bool,
        price: Option<&ModelPrice>,
        batch_discount: f64,
    ) {
        self.input_tokens += input;
        self.output_tokens += output;
        let Some(p) = price else {
            return;
        };
        let on_demand = (input as f64 * p.input_per_mtok + output as f64 * p.output_per_mtok) / 1e6;
        let batch = on_demand * batch_discount;
        self.on_demand_usd += on_demand;
        self.batch_usd += batch;
        self.cost_usd += if ran_on_demand { on_demand } else { batch };
    }

    /// Adds another's figures.
    pub fn merge(&mut self, o: &Usage) {
        self.images += o.images;
        self.on_demand_images += o.on_demand_images;
        self.flagged += o.flagged;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cost_usd += o.cost_usd;
        self.batch_usd += o.batch_usd;
        self.on_demand_usd += o.on_demand_usd;
        self.deduplicated += o.deduplicated;
        self.tokens_saved += o.tokens_saved;
        self.usd_saved += o.usd_saved;
    }

    /// The same figures with USD rounded to a millionth (for answers and reports).
    pub fn rounded(mut self) -> Self {
        let r = |x: f64| (x * 1e6).round() / 1e6;
        self.cost_usd = r(self.cost_usd);
        self.batch_usd = r(self.batch_usd);
        self.on_demand_usd = r(self.on_demand_usd);
        self.usd_saved = r(self.usd_saved);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{ObjectKey, RecordId};

    fn result(input: u64, output: u64, on_demand: bool, status: ResultStatus) -> ImageResult {
        let mut r = ImageResult::skipped(
            RecordId::parse("r-1").expect("id"),
            0,
            ObjectKey::parse("uploads/u/a.png").expect("key"),
            "",
        );
        (r.status, r.input_tokens, r.output_tokens, r.on_demand) =
            (status, input, output, on_demand);
        r
    }

    #[test]
    fn when_results_ran_in_batch_and_on_demand_should_price_each_as_it_ran() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).expect("day");
        let price = ModelPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 5.0,
        };
        let mut d = DayUsage::new(day);
        let u = &mut d.usage;
        // 1,000,000 input + 200,000 output tokens: 2 USD on-demand, 1 USD in batch.
        u.add(
            &result(1_000_000, 200_000, false, ResultStatus::Succeeded),
            (Some(&price), None),
            0.5,
        );
        u.add(
            &result(1_000_000, 200_000, true, ResultStatus::Succeeded),
            (Some(&price), None),
            0.5,
        );
        u.add(
            &result(9, 9, false, ResultStatus::Skipped),
            (Some(&price), None),
            0.5,
        );
        let u = d.rounded().usage;
        assert_eq!((u.images, u.on_demand_images), (2, 1));
        assert_eq!((u.input_tokens, u.output_tokens), (2_000_000, 400_000));
        assert_eq!((u.cost_usd, u.batch_usd, u.on_demand_usd), (3.0, 2.0, 4.0));
    }

    #[test]
    fn when_a_copy_was_answered_from_its_first_should_count_what_it_saved_not_what_it_cost() {
        use crate::domain::duplicates::DuplicateOf;
        let price = ModelPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 5.0,
        };
        let mut copy = result(0, 0, false, ResultStatus::Succeeded);
        copy.duplicate_of = Some(Box::new(DuplicateOf {
            job_id: crate::domain::ids::JobId::parse("bj-0123456789abcdef01234567").expect("id"),
            image_key: ObjectKey::parse("uploads/u/first.jpg").expect("key"),
            saved_input_tokens: 1_000_000,
            saved_output_tokens: 200_000,
            saved_on_demand: false,
        }));
        let mut u = Usage::default();
        u.add(&copy, (Some(&price), None), 0.5);
        let u = u.rounded();
        assert_eq!((u.images, u.input_tokens, u.cost_usd), (0, 0, 0.0));
        assert_eq!(
            (u.deduplicated, u.tokens_saved, u.usd_saved),
            (1, 1_200_000, 1.0)
        );
    }

    #[test]
    fn when_a_reask_went_to_a_stronger_model_should_price_it_at_that_model() {
        use crate::domain::results::{Attempt, Kept, Reask};
        let cheap = ModelPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 5.0,
        };
        let strong = ModelPrice {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        // The batch answer (1 USD in batch at the cheap price) was flagged; the stronger
        // model's on-demand re-ask (6 USD at its price) was kept.
        let mut r = result(1_000_000, 200_000, true, ResultStatus::Succeeded);
        r.reask = Some(Box::new(Reask {
            policy: "model:strong".into(),
            kept: Kept::Reask,
            other: Attempt {
                status: ResultStatus::Succeeded,
                text: None,
                error_message: None,
                checks: Vec::new(),
                input_tokens: 1_000_000,
                output_tokens: 200_000,
                on_demand: false,
            },
        }));
        let mut u = Usage::default();
        u.add(&r, (Some(&cheap), Some(&strong)), 0.5);
        assert_eq!(u.rounded().cost_usd, 7.0);
        let mut same = Usage::default();
        same.add(&r, (Some(&cheap), None), 0.5);
        assert_eq!(
            same.rounded().cost_usd,
            3.0,
            "no price of its own: the intent's"
        );
    }
}
