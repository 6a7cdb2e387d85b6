//! Field accuracy, SROIE-style (`cargo bench --bench fields`): the corpus of phone-like receipt
//! photos whose every field is known (`support/corpus.rs`, the tuned shots and the unseen
//! ones), each normalized under the whole and the economy policy and read by the local model
//! (Tesseract and the receipt rules, `shared::adapters::embedded::local_model`: the stand-in
//! for the model that the embedded backend runs). Scored as SROIE scores its key fields: exact
//! match after normalization (merchant: upper case, letters and digits; date: YYYY-MM-DD;
//! total: to the cent), and F1 over the items (description and amount pairs). Then the checks
//! (`domain::receipt::check`): how many answers they flag, how many flagged answers a re-ask of
//! the whole photo fixes (`REASK_POLICY=whole`: the better answer kept, the first on a tie), and
//! how many flags fall on an answer right in everything the checks read (its date and every
//! amount: a false flag); `caught` is the share of answers wrong in those that were flagged.
//! Prints one line per copy:
//!
//! `fields: copy=C receipts=N merchant=… date=… total=… items_f1=… flagged=… reasked=… fixed=… false_flags=…`

// The corpus's text and screenshot serve the OCR benches; this one reads its fields.
#[allow(dead_code)]
#[path = "support/corpus.rs"]
mod corpus;

use corpus::Drawn;
use serde_json::Value;
use shared::adapters::embedded::local_model::LocalModel;
use shared::domain::family::Claude;
use shared::domain::normalize::{normalize, Policy, Target};
use shared::domain::receipt::{check, Context};

/// What one reading scored.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    merchant: bool,
    date: bool,
    total: bool,
    items_f1: f64,
    /// Every amount the checks read is right: the items' (as a multiset), the subtotal, the
    /// tax, the total.
    amounts: bool,
    failed_checks: usize,
}

impl Score {
    /// Right in everything the checks look at (they see no merchant or description): a flag
    /// on such an answer is a false flag.
    fn checked_right(&self) -> bool {
        self.date && self.amounts
    }
}

fn letters(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_uppercase()
}

fn cents(v: &Value) -> Option<i64> {
    v.as_f64().map(|x| (x * 100.0).round() as i64)
}

/// F1 of the read items against the drawn ones, as (description, amount) pairs.
fn items_f1(read: &Value, drawn: &Drawn) -> f64 {
    let mut want: Vec<(String, i64)> = drawn
        .items
        .iter()
        .map(|(d, c)| (letters(d), i64::from(*c)))
        .collect();
    let got: Vec<(String, i64)> = read["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    let d = letters(i["description"].as_str().unwrap_or(""));
                    (d, cents(&i["amount"]).unwrap_or(-1))
                })
                .collect()
        })
        .unwrap_or_default();
    let (n_want, n_got) = (want.len(), got.len());
    let mut hits = 0usize;
    for g in &got {
        if let Some(i) = want.iter().position(|w| w == g) {
            want.swap_remove(i);
            hits += 1;
        }
    }
    if n_want + n_got == 0 {
        return 1.0;
    }
    2.0 * hits as f64 / (n_want + n_got) as f64
}

/// True when the read amounts are the drawn ones: items (in any order), subtotal, tax, total.
fn amounts_right(read: &Value, drawn: &Drawn) -> bool {
    let mut want: Vec<i64> = drawn.items.iter().map(|(_, c)| i64::from(*c)).collect();
    let mut got: Vec<i64> = read["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .map(|x| cents(&x["amount"]).unwrap_or(-1))
                .collect()
        })
        .unwrap_or_default();
    want.sort_unstable();
    got.sort_unstable();
    want == got
        && cents(&read["subtotal"]) == Some(i64::from(drawn.subtotal))
        && cents(&read["taxes"][0]["amount"]) == Some(i64::from(drawn.tax))
        && cents(&read["total"]) == Some(i64::from(drawn.total))
}

fn score(read: &Value, drawn: &Drawn) -> Score {
    let ctx = Context {
        uploaded: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("a day"),
        max_age_days: 365,
    };
    Score {
        merchant: read["merchant"]["name"].as_str().map(letters) == Some(letters(&drawn.merchant)),
        date: read["date"].as_str() == Some(&drawn.date.format("%Y-%m-%d").to_string()),
        total: cents(&read["total"]) == Some(i64::from(drawn.total)),
        items_f1: items_f1(read, drawn),
        amounts: amounts_right(read, drawn),
        failed_checks: check(Some(read), ctx).iter().filter(|c| !c.passed).count(),
    }
}

/// The local model's reading of a normalized copy of `photo` under `target`.
async fn read(photo: &corpus::Photo, target: Target) -> anyhow::Result<Value> {
    let n = normalize(&photo.bytes, target).map_err(|e| anyhow::anyhow!("{}: {e}", photo.name))?;
    LocalModel::Tesseract
        .read(&n.jpeg)
        .await
        .ok_or_else(|| anyhow::anyhow!("tesseract did not run"))
}

fn line(copy: &str, firsts: &[Score], kept: &[Score], reasked: usize) -> String {
    let n = firsts.len().max(1) as f64;
    let share = |f: &dyn Fn(&Score) -> bool| firsts.iter().filter(|s| f(s)).count() as f64 / n;
    let flagged: Vec<usize> = (0..firsts.len())
        .filter(|&i| firsts[i].failed_checks > 0)
        .collect();
    let fixed = flagged
        .iter()
        .filter(|&&i| !firsts[i].checked_right() && kept[i].checked_right())
        .count();
    let false_flags = flagged
        .iter()
        .filter(|&&i| firsts[i].checked_right())
        .count();
    format!(
        "fields: copy={copy} receipts={} merchant={:.3} date={:.3} total={:.3} items_f1={:.3} flagged={} reasked={reasked} fixed={fixed} false_flags={false_flags} caught={}/{}",
        firsts.len(),
        share(&|s| s.merchant),
        share(&|s| s.date),
        share(&|s| s.total),
        firsts.iter().map(|s| s.items_f1).sum::<f64>() / n,
        flagged.len(),
        flagged.iter().filter(|&&i| !firsts[i].checked_right()).count(),
        firsts.iter().filter(|s| !s.checked_right()).count(),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        shared::adapters::embedded::local_model::tesseract_installed(),
        "tesseract is missing: apt-get install tesseract-ocr (Debian's, 5.x)"
    );
    let mut shots = corpus::shots();
    shots.extend(corpus::unseen_shots());
    // The close-up is a receipt too; the screenshot's fields are known as well.
    let whole_target = Target::for_family(&Claude, Policy::Whole);
    let economy_target = Target::for_family(&Claude, Policy::Economy);
    let (mut whole, mut econ, mut econ_kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut reasked = 0;
    println!(
        "| photo | whole: merchant, date, total, items F1, failed checks | economy: the same |"
    );
    println!("| --- | --- | --- |");
    for shot in &shots {
        let photo = corpus::photograph(shot, 4032);
        let drawn = corpus::receipt(shot.items, shot.seed);
        let w = score(&read(&photo, whole_target).await?, &drawn);
        let e = score(&read(&photo, economy_target).await?, &drawn);
        // REASK_POLICY=whole: a flagged economy answer is asked again with the whole photo.
        let kept = if e.failed_checks > 0 {
            reasked += 1;
            if w.failed_checks < e.failed_checks {
                w
            } else {
                e
            }
        } else {
            e
        };
        let cell = |s: &Score| {
            format!(
                "{} {} {} {:.2} {} {}",
                u8::from(s.merchant),
                u8::from(s.date),
                u8::from(s.total),
                s.items_f1,
                u8::from(s.amounts),
                s.failed_checks
            )
        };
        println!("| {} | {} | {} |", shot.name, cell(&w), cell(&e));
        whole.push(w);
        econ.push(e);
        econ_kept.push(kept);
    }
    println!();
    println!("{}", line("whole", &whole, &whole, 0));
    println!("{}", line("economy", &econ, &econ_kept, reasked));
    Ok(())
}
