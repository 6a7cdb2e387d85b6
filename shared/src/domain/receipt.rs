//! A receipt as the model answers it (`receipt-v2`, the JSON Schema in
//! `schemas/receipt-v2.schema.json`), and the checks every answer is held to: pure rules, each
//! with a name and a detail, so a result says what is wrong with it, not only that something is.
//!
//! The answer is validated against the schema with a maintained JSON Schema crate
//! (`jsonschema`, draft 2020-12); an answer that fails it is a failed check (`schema`), never
//! a silent success. Then arithmetic and sense, each with its tolerance stated:
//! - `items_sum`: the items' amounts sum to the subtotal, or to the total where there is no
//!   subtotal and every tax is included in the prices; within one minor unit per item;
//! - `total`: subtotal + taxes not included + tip - discount = total, within one minor unit per
//!   term;
//! - `tax_rate`: a single tax added on top is its rate of the subtotal, within one minor unit
//!   (several taxes, or one in the prices, may have bases of their own: not checked);
//! - `line_amounts`: quantity x unit price = amount for each item, within one minor unit;
//! - `date`: a real date, not after the day the photo was uploaded (UTC, with a day of
//!   leeway for zones east of it), not older than `RECEIPT_MAX_AGE_DAYS`;
//! - `currency`: an ISO 4217 code (the `iso_currency` crate), and no amount with more decimals
//!   than its minor unit (JPY 0, USD 2, KWD 3);
//! - `total_positive`: a total above 0.
//!
//! A check whose inputs were not read (null) passes with the detail "not read": a receipt is
//! not wrong for a field its photo does not show. The total is the exception: a receipt without
//! one needs review.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The prompt version whose answers are held to [`SCHEMA_V2`].
pub const RECEIPT_V2: &str = "receipt-v2";

/// `schemas/receipt-v2.schema.json`.
pub const SCHEMA_V2: &str = include_str!("../../../schemas/receipt-v2.schema.json");

/// One check of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    fn new(name: &str, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed,
            detail: detail.into(),
        }
    }

    fn not_read(name: &str, what: &str) -> Self {
        Self::new(name, true, format!("not read: {what}"))
    }
}

/// What an answer is checked against besides itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The day the photo was uploaded (a receipt cannot be from later).
    pub uploaded: chrono::NaiveDate,
    /// How old a receipt may be (`RECEIPT_MAX_AGE_DAYS`).
    pub max_age_days: i64,
}

/// How the answers of one intent are reviewed: against its prompt's schema, from the day each
/// photo was uploaded (the day in its key `uploads/{user}/{YYYY-MM-DD}/…`, else `today`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Review {
    pub today: chrono::NaiveDate,
    pub max_age_days: i64,
}

impl Review {
    /// The review of an intent's answers under `prompt_version`: only receipt-v2's are held to
    /// the schema (receipt-v1's stored answers stay readable, unchecked).
    pub fn of(prompt_version: &str, today: chrono::NaiveDate, max_age_days: i64) -> Option<Self> {
        (prompt_version == RECEIPT_V2).then_some(Self {
            today,
            max_age_days,
        })
    }

    /// The checks' context for the image at `key`.
    pub fn context_for(&self, key: &str) -> Context {
        let day = key
            .split('/')
            .nth(2)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        Context {
            uploaded: day.unwrap_or(self.today),
            max_age_days: self.max_age_days,
        }
    }
}

/// The compiled schema, built once.
fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(SCHEMA_V2).expect("schemas/receipt-v2.schema.json is JSON");
        jsonschema::draft202012::new(&schema).expect("receipt-v2 is a valid draft 2020-12 schema")
    })
}

/// Every check of `answer` (a receipt-v2 JSON object, or None when the model's answer held
/// none), in a fixed order.
pub fn check(answer: Option<&serde_json::Value>, ctx: Context) -> Vec<Check> {
    let Some(answer) = answer else {
        return vec![Check::new(
            "schema",
            false,
            "the answer holds no JSON object",
        )];
    };
    let errors: Vec<String> = validator()
        .iter_errors(answer)
        .take(3)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if !errors.is_empty() {
        return vec![Check::new("schema", false, errors.join("; "))];
    }
    let r: ReceiptV2 = match serde_json::from_value(answer.clone()) {
        Ok(r) => r,
        Err(e) => return vec![Check::new("schema", false, e.to_string())],
    };
    let unit = minor_unit(r.currency.as_deref());
    vec![
        Check::new("schema", true, "valid receipt-v2"),
        items_sum(&r, unit),
        total(&r, unit),
        tax_rate(&r, unit),
        line_amounts(&r, unit),
        date(&r, ctx),
        currency(&r),
        total_positive(&r),
    ]
}

/// The receipt-v2 fields the checks read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptV2 {
    date: Option<String>,
    currency: Option<String>,
    subtotal: Option<f64>,
    taxes: Vec<Tax>,
    tip: Option<f64>,
    discount: Option<f64>,
    total: Option<f64>,
    items: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
struct Tax {
    rate: Option<f64>,
    amount: Option<f64>,
    included: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    quantity: Option<f64>,
    unit_price: Option<f64>,
    amount: Option<f64>,
}

/// One minor unit of `currency` (0.01 when it is not read or not known).
fn minor_unit(currency: Option<&str>) -> f64 {
    let digits = currency.and_then(digits_of).unwrap_or(2);
    10f64.powi(-i32::from(digits))
}

/// The minor-unit digits of an ISO 4217 code.
pub fn digits_of(code: &str) -> Option<u16> {
    iso_currency::Currency::from_code(code).and_then(|c| c.exponent())
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance + 1e-9
}

fn items_sum(r: &ReceiptV2, unit: f64) -> Check {
    const NAME: &str = "items_sum";
    let amounts: Option<Vec<f64>> = r.items.iter().map(|i| i.amount).collect();
    let Some(amounts) = amounts.filter(|a| !a.is_empty()) else {
        return Check::not_read(NAME, "item amounts");
    };
    let sum: f64 = amounts.iter().sum();
    let tol = unit * amounts.len() as f64;
    let all_included = r.taxes.iter().all(|t| t.included == Some(true));
    let (target, what) = match (r.subtotal, r.total) {
        (Some(s), _) => (s, "subtotal"),
        (None, Some(t)) if all_included && r.tip.is_none() && r.discount.is_none() => (t, "total"),
        _ => return Check::not_read(NAME, "a subtotal (or a total with tax included)"),
    };
    Check::new(
        NAME,
        close(sum, target, tol),
        format!(
            "items sum to {sum:.4} against the {what} {target:.4} (tolerance {tol:.4}: one minor unit per item)"
        ),
    )
}

fn total(r: &ReceiptV2, unit: f64) -> Check {
    const NAME: &str = "total";
    let (Some(subtotal), Some(total)) = (r.subtotal, r.total) else {
        return Check::not_read(NAME, "subtotal and total");
    };
    let added: Option<f64> = r
        .taxes
        .iter()
        .filter(|t| t.included != Some(true))
        .map(|t| t.amount)
        .sum();
    let Some(taxes) = added else {
        return Check::not_read(NAME, "a tax amount");
    };
    let expected = subtotal + taxes + r.tip.unwrap_or(0.0) - r.discount.unwrap_or(0.0);
    let terms =
        2 + r.taxes.len() + usize::from(r.tip.is_some()) + usize::from(r.discount.is_some());
    let tol = unit * terms as f64;
    Check::new(
        NAME,
        close(expected, total, tol),
        format!(
            "subtotal + taxes + tip - discount = {expected:.4} against the total {total:.4} (tolerance {tol:.4}: one minor unit per term)"
        ),
    )
}

/// A single tax added on top is its rate of the subtotal, within one minor unit (a till rounds
/// or truncates the tax to its minor unit). Several taxes, or a tax in the prices, may each
/// have a base of their own: not checked.
fn tax_rate(r: &ReceiptV2, unit: f64) -> Check {
    const NAME: &str = "tax_rate";
    let added: Vec<&Tax> = r
        .taxes
        .iter()
        .filter(|t| t.included != Some(true))
        .collect();
    let (Some(subtotal), [tax]) = (r.subtotal, added.as_slice()) else {
        return Check::not_read(NAME, "one added tax and a subtotal");
    };
    let (Some(rate), Some(amount)) = (tax.rate, tax.amount) else {
        return Check::not_read(NAME, "the tax's rate and amount");
    };
    let expected = subtotal * rate / 100.0;
    Check::new(
        NAME,
        close(expected, amount, unit),
        format!(
            "{rate}% of the subtotal {subtotal:.4} = {expected:.4} against the tax {amount:.4} (tolerance {unit:.4}: one minor unit)"
        ),
    )
}

fn line_amounts(r: &ReceiptV2, unit: f64) -> Check {
    const NAME: &str = "line_amounts";
    let priced: Vec<(usize, f64, f64)> = r
        .items
        .iter()
        .enumerate()
        .filter_map(|(n, i)| Some((n, i.quantity? * i.unit_price?, i.amount?)))
        .collect();
    if priced.is_empty() {
        return Check::not_read(NAME, "quantity, unit price and amount of any item");
    }
    match priced.iter().find(|(_, q, a)| !close(*q, *a, unit)) {
        Some((n, q, a)) => Check::new(
            NAME,
            false,
            format!("item {n}: quantity x unit price = {q:.4}, its amount {a:.4} (tolerance {unit}: one minor unit)"),
        ),
        None => Check::new(
            NAME,
            true,
            format!("{} items: quantity x unit price = amount (tolerance {unit})", priced.len()),
        ),
    }
}

fn date(r: &ReceiptV2, ctx: Context) -> Check {
    const NAME: &str = "date";
    let Some(raw) = r.date.as_deref() else {
        return Check::not_read(NAME, "the date");
    };
    let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") else {
        return Check::new(NAME, false, format!("{raw} is not a date"));
    };
    let oldest = ctx.uploaded - chrono::Duration::days(ctx.max_age_days);
    // A day of leeway: the upload day is UTC's, and a receipt printed east of UTC may be dated
    // the next day.
    if day > ctx.uploaded + chrono::Duration::days(1) {
        return Check::new(
            NAME,
            false,
            format!("{day} is after the upload day {}", ctx.uploaded),
        );
    }
    if day < oldest {
        return Check::new(
            NAME,
            false,
            format!(
                "{day} is more than {} days before the upload day {} (RECEIPT_MAX_AGE_DAYS)",
                ctx.max_age_days, ctx.uploaded
            ),
        );
    }
    Check::new(
        NAME,
        true,
        format!(
            "{day}, within {} days before the upload day",
            ctx.max_age_days
        ),
    )
}

fn currency(r: &ReceiptV2) -> Check {
    const NAME: &str = "currency";
    let Some(code) = r.currency.as_deref() else {
        return Check::not_read(NAME, "the currency");
    };
    let Some(digits) = digits_of(code) else {
        return Check::new(
            NAME,
            false,
            format!("{code} is not an ISO 4217 currency with minor units"),
        );
    };
    let scale = 10f64.powi(i32::from(digits));
    let amounts = r
        .items
        .iter()
        .flat_map(|i| [i.unit_price, i.amount])
        .chain(r.taxes.iter().map(|t| t.amount))
        .chain([r.subtotal, r.tip, r.discount, r.total])
        .flatten();
    let mut bad = amounts.filter(|a| ((a * scale).round() - a * scale).abs() > 1e-6);
    match bad.next() {
        Some(a) => Check::new(
            NAME,
            false,
            format!("{a} has more decimals than {code}'s {digits}"),
        ),
        None => Check::new(NAME, true, format!("{code}, {digits} decimals")),
    }
}

fn total_positive(r: &ReceiptV2) -> Check {
    const NAME: &str = "total_positive";
    match r.total {
        Some(t) if t > 0.0 => Check::new(NAME, true, format!("total {t}")),
        Some(t) => Check::new(NAME, false, format!("total {t} is not above 0")),
        None => Check::new(NAME, false, "no total read"),
    }
}

#[cfg(test)]
#[path = "receipt_tests.rs"]
mod tests;
