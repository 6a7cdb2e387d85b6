//! What the local reader makes of a receipt's text (Tesseract's reading, one printed line a
//! line): a `receipt-v2` answer, by rules a person would use reading a till receipt.
//!
//! - **Amounts** are the number at a line's end with two decimals (`12.34`, `12,34`, `$12.34`,
//!   `-1.50`); in yen, a whole number after `¥` or before `円`.
//! - **Totals** are named by the line's words: `SUBTOTAL`, `TAX`/`VAT`/`GST`/`HST` (a rate
//!   `8.5%` when printed; `INCL` marks a tax already in the prices), `TIP`/`GRATUITY`,
//!   `DISCOUNT`/`COUPON`/`SAVINGS`, then the first `TOTAL`/`AMOUNT DUE`/`BALANCE DUE` line.
//!   Tender lines (`CASH`, `CHANGE`, a card) are payment, never items.
//! - **Items** are the other priced lines above the subtotal (or the total): a description and
//!   an amount, with a quantity when printed as `2 x`, `2 @ 1.25` or `QTY 2`.
//! - **The merchant** is the first line with three letters or more; its address the next line
//!   with a digit and a word; its phone a line with `TEL`/`PHONE` or a phone-shaped number.
//! - **Date and time**: `YYYY-MM-DD` (or `/` and `.`), else `MM/DD/YYYY` (a US till's order;
//!   `DD/MM` when the first number cannot be a month); `HH:MM`.
//! - **Currency**: `€`/`EUR`, `£`/`GBP`, `¥`/`円`/`JPY`, else USD.
//!
//! What is not found is null, as the schema asks; the checks then say what is missing.

use regex::Regex;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a valid pattern"))
}

fn amount_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(-)?\s?[$€£]?\s?(\d{1,3}(?:[ ,]\d{3})+|\d+)[.,](\d{2})\s*[A-Z*]{0,2}\)?\s*$",
    )
}

fn yen_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"(?:¥\s?(\d{1,3}(?:,\d{3})+|\d+)|(\d{1,3}(?:,\d{3})+|\d+)\s?円)\)?\s*$",
    )
}

/// A line's amount at its end, in minor units, and where it starts.
fn amount(line: &str, yen: bool) -> Option<(i64, usize)> {
    if yen {
        let c = yen_re().captures(line)?;
        let digits = c.get(1).or_else(|| c.get(2))?;
        let units: i64 = digits.as_str().replace(',', "").parse().ok()?;
        return Some((units, c.get(0)?.start()));
    }
    let c = amount_re().captures(line)?;
    let whole: i64 = c[2].replace([' ', ','], "").parse().ok()?;
    let cents: i64 = c[3].parse().ok()?;
    let sign = if c.get(1).is_some() { -1 } else { 1 };
    Some((sign * (whole * 100 + cents), c.get(0)?.start()))
}

/// What a priced line is, by its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subtotal,
    Tax,
    Tip,
    Discount,
    Total,
    Tender,
    Item,
}

fn kind(upper: &str) -> Kind {
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |names: &[&str]| names.iter().any(|n| words.contains(n));
    let joined = words.join(" ");
    if has(&["SUBTOTAL"]) || joined.contains("SUB TOTAL") {
        Kind::Subtotal
    } else if words.first() == Some(&"TOTAL")
        || joined.contains("AMOUNT DUE")
        || joined.contains("BALANCE DUE")
    {
        Kind::Total
    } else if has(&["TAX", "VAT", "GST", "HST", "MWST"]) {
        Kind::Tax
    } else if has(&["TIP", "GRATUITY"]) {
        Kind::Tip
    } else if has(&["DISCOUNT", "COUPON", "SAVINGS"]) {
        Kind::Discount
    } else if has(&["TOTAL"]) {
        Kind::Total
    } else if has(&[
        "CASH",
        "CHANGE",
        "TENDER",
        "VISA",
        "MASTERCARD",
        "AMEX",
        "DEBIT",
    ]) {
        Kind::Tender
    } else {
        Kind::Item
    }
}

/// The receipt's currency, from its symbols and codes.
fn currency(text: &str) -> &'static str {
    let upper = text.to_uppercase();
    if text.contains('€') || upper.contains("EUR") {
        "EUR"
    } else if text.contains('£') || upper.contains("GBP") {
        "GBP"
    } else if text.contains('¥') || text.contains('円') || upper.contains("JPY") {
        "JPY"
    } else {
        "USD"
    }
}

/// The receipt-v2 answer for a receipt's text.
pub fn receipt_from_text(text: &str) -> Value {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let currency = currency(text);
    let yen = currency == "JPY";
    let money = |units: i64| -> Value {
        if yen {
            json!(units)
        } else {
            json!(units as f64 / 100.0)
        }
    };
    let priced = Priced::read(&lines, yen);
    let (date, time) = date_time(&lines);
    json!({
        "merchant": merchant(&lines),
        "date": date,
        "time": time,
        "currency": currency,
        "subtotal": priced.subtotal.map(money),
        "taxes": priced.taxes.iter().map(|(rate, units, included)| json!({
            "rate": rate, "amount": money(*units), "included": included,
        })).collect::<Vec<_>>(),
        "tip": priced.tip.map(money),
        "discount": priced.discount.map(|d| money(d.abs())),
        "total": priced.total.map(money),
        "paymentMethod": payment(&lines),
        "items": priced.items.iter().map(|i| json!({
            "description": i.description,
            "quantity": i.quantity,
            "unitPrice": money(i.unit),
            "amount": money(i.amount),
        })).collect::<Vec<_>>(),
    })
}

#[derive(Debug)]
struct Item {
    description: String,
    quantity: i64,
    unit: i64,
    amount: i64,
}

#[derive(Debug, Default)]
struct Priced {
    items: Vec<Item>,
    subtotal: Option<i64>,
    taxes: Vec<(Option<f64>, i64, bool)>,
    tip: Option<i64>,
    discount: Option<i64>,
    total: Option<i64>,
}

impl Priced {
    /// The priced lines of `lines`, read top to bottom until the total.
    fn read(lines: &[&str], yen: bool) -> Self {
        let mut out = Self::default();
        for line in lines {
            let Some((units, at)) = amount(line, yen) else {
                continue;
            };
            let label = line[..at].trim();
            let upper = label.to_uppercase();
            match kind(&upper) {
                Kind::Subtotal => out.subtotal = out.subtotal.or(Some(units)),
                Kind::Tax => out
                    .taxes
                    .push((rate(&upper), units, upper.contains("INCL"))),
                Kind::Tip => out.tip = Some(units),
                Kind::Discount => out.discount = Some(units),
                Kind::Total if out.total.is_none() => out.total = Some(units),
                Kind::Item
                    if out.total.is_none() && out.subtotal.is_none() && !label.is_empty() =>
                {
                    out.items.push(item(label, units, yen));
                }
                _ => {}
            }
        }
        out
    }
}

fn rate(upper: &str) -> Option<f64> {
    static R: OnceLock<Regex> = OnceLock::new();
    let c = re(&R, r"(\d{1,2}(?:[.,]\d{1,3})?)\s?%").captures(upper)?;
    c[1].replace(',', ".").parse().ok()
}

/// An item line's description and quantity (`2 x NAME`, `NAME 2 @ 1.25`, `QTY 2`), else one.
fn item(label: &str, amount: i64, yen: bool) -> Item {
    static LEAD: OnceLock<Regex> = OnceLock::new();
    static TAIL: OnceLock<Regex> = OnceLock::new();
    let lead = re(&LEAD, r"^(\d{1,3})\s?[xX×]\s+(.+)$");
    let tail = re(
        &TAIL,
        r"^(.+?)\s+(?:QTY\s?)?(\d{1,3})\s?(?:[xX×@]\s?[$€£¥]?[\d.,]*)?$",
    );
    let (description, quantity) = if let Some(c) = lead.captures(label) {
        (c[2].to_string(), c[1].parse().unwrap_or(1))
    } else if let Some(c) = tail
        .captures(label)
        .filter(|c| c[0].contains(['@', 'x', 'X', '×']) || c[0].contains("QTY"))
    {
        (c[1].to_string(), c[2].parse().unwrap_or(1))
    } else {
        (label.to_string(), 1)
    };
    let quantity = quantity.max(1);
    let unit = if amount % quantity == 0 || yen {
        amount / quantity
    } else {
        amount
    };
    let quantity = if unit * quantity == amount {
        quantity
    } else {
        1
    };
    Item {
        description: description.trim().to_string(),
        quantity,
        unit: if quantity == 1 { amount } else { unit },
        amount,
    }
}

/// The merchant: the first line with three letters, the next line with a digit and a word as
/// its address, a phone-shaped number as its phone.
fn merchant(lines: &[&str]) -> Value {
    static PHONE: OnceLock<Regex> = OnceLock::new();
    let phone = re(
        &PHONE,
        r"(\+?\(?\d{2,4}\)?[ .-]?\d{3}[ .-]\d{3,4}(?:[ .-]\d{2,4})?)",
    );
    let letters = |l: &str| l.chars().filter(|c| c.is_alphabetic()).count();
    let header: Vec<&str> = lines.iter().take(6).copied().collect();
    let name_at = header.iter().position(|l| letters(l) >= 3);
    let name = name_at.map(|i| header[i].to_string());
    let phone_of = |l: &&str| {
        let upper = l.to_uppercase();
        (upper.contains("TEL") || upper.contains("PHONE") || !upper.contains(':'))
            .then(|| phone.captures(l).map(|c| c[1].to_string()))
            .flatten()
    };
    let phone_no = header.iter().find_map(phone_of);
    let address = name_at.and_then(|i| {
        header[i + 1..]
            .iter()
            .find(|l| {
                l.chars().any(|c| c.is_ascii_digit())
                    && letters(l) >= 3
                    && phone_of(l).is_none()
                    && date_time(&[*l]).0.is_null()
            })
            .map(|l| l.to_string())
    });
    if name.is_none() {
        return Value::Null;
    }
    json!({"name": name, "address": address, "phone": phone_no})
}

/// The first date and time printed, as `YYYY-MM-DD` and `HH:MM`.
fn date_time(lines: &[&str]) -> (Value, Value) {
    static ISO: OnceLock<Regex> = OnceLock::new();
    static DMY: OnceLock<Regex> = OnceLock::new();
    static TIME: OnceLock<Regex> = OnceLock::new();
    let iso = re(&ISO, r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b");
    let dmy = re(&DMY, r"\b(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})\b");
    let time = re(&TIME, r"\b([01]?\d|2[0-3]):([0-5]\d)\b");
    let mut date = Value::Null;
    let mut at = Value::Null;
    for line in lines {
        if date.is_null() {
            let ymd = iso
                .captures(line)
                .and_then(|c| ymd(&c[1], &c[2], &c[3]))
                .or_else(|| {
                    let c = dmy.captures(line)?;
                    let year = if c[3].len() == 2 {
                        format!("20{}", &c[3])
                    } else {
                        c[3].to_string()
                    };
                    ymd(&year, &c[1], &c[2]).or_else(|| ymd(&year, &c[2], &c[1]))
                });
            if let Some(d) = ymd {
                date = json!(d.format("%Y-%m-%d").to_string());
            }
        }
        if at.is_null() {
            if let Some(c) = time.captures(line) {
                at = json!(format!("{:02}:{}", c[1].parse::<u32>().unwrap_or(0), &c[2]));
            }
        }
    }
    (date, at)
}

fn ymd(y: &str, m: &str, d: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// How it was paid: a card's name, else cash when tendered.
fn payment(lines: &[&str]) -> Value {
    const CARDS: [&str; 6] = ["VISA", "MASTERCARD", "AMEX", "DISCOVER", "DEBIT", "CREDIT"];
    for line in lines {
        let upper = line.to_uppercase();
        if let Some(card) = CARDS.iter().find(|c| upper.contains(*c)) {
            return json!(card);
        }
        if upper.contains("CASH") {
            return json!("CASH");
        }
    }
    Value::Null
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
