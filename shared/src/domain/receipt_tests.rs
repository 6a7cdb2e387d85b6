use super::*;
use serde_json::json;

fn ctx() -> Context {
    Context {
        uploaded: chrono::NaiveDate::from_ymd_opt(2026, 12, 5).expect("day"),
        max_age_days: 365,
    }
}

fn good() -> serde_json::Value {
    json!({
        "merchant": {"name": "Corner Cafe", "address": null, "phone": null},
        "date": "2026-12-04", "time": "08:15", "currency": "USD",
        "subtotal": 7.50,
        "taxes": [{"rate": 8.0, "amount": 0.60, "included": false}],
        "tip": 1.00, "discount": null, "total": 9.10, "paymentMethod": "card",
        "items": [
            {"description": "Latte", "quantity": 1, "unitPrice": 4.50, "amount": 4.50},
            {"description": "Bagel", "quantity": 2, "unitPrice": 1.50, "amount": 3.00}
        ]
    })
}

fn failed(answer: &serde_json::Value) -> Vec<String> {
    check(Some(answer), ctx())
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

#[test]
fn a_consistent_receipt_passes_every_check() {
    let checks = check(Some(&good()), ctx());
    assert_eq!(checks.len(), 8);
    assert!(checks.iter().all(|c| c.passed), "{checks:?}");
}

#[test]
fn each_rule_names_what_it_caught() {
    let mut wrong_total = good();
    wrong_total["total"] = json!(19.10);
    assert_eq!(failed(&wrong_total), vec!["total"]);

    // A tax misread while the total still adds up (both off by the same 0.10).
    let mut wrong_tax = good();
    wrong_tax["taxes"][0]["amount"] = json!(0.70);
    wrong_tax["total"] = json!(9.20);
    assert_eq!(failed(&wrong_tax), vec!["tax_rate"]);
    // A truncated tax is within one minor unit: 8.5% of 7.50 is 0.6375, printed 0.63.
    let mut truncated = good();
    truncated["taxes"][0] = json!({"rate": 8.5, "amount": 0.63, "included": false});
    truncated["total"] = json!(9.13);
    assert!(failed(&truncated).is_empty());

    let mut wrong_item = good();
    wrong_item["items"][1]["amount"] = json!(3.50);
    assert_eq!(failed(&wrong_item), vec!["items_sum", "line_amounts"]);

    let mut future = good();
    future["date"] = json!("2026-12-07");
    assert_eq!(failed(&future), vec!["date"]);
    future["date"] = json!("2024-01-01");
    assert_eq!(failed(&future), vec!["date"], "older than a year");
    future["date"] = json!("2026-02-30");
    assert_eq!(failed(&future), vec!["date"], "not a date");

    let mut no_total = good();
    no_total["total"] = json!(null);
    assert_eq!(failed(&no_total), vec!["total_positive"]);

    let mut bad_currency = good();
    bad_currency["currency"] = json!("XYZ");
    assert_eq!(failed(&bad_currency), vec!["currency"]);
}

#[test]
fn amounts_follow_the_currencys_minor_units_and_included_tax() {
    // A Japanese receipt: no decimals, 10% consumption tax included in the prices.
    let yen = json!({
        "merchant": {"name": "コンビニ", "address": null, "phone": null},
        "date": "2026-12-01", "time": null, "currency": "JPY",
        "subtotal": null,
        "taxes": [{"rate": 10, "amount": 100, "included": true}],
        "tip": null, "discount": null, "total": 1100, "paymentMethod": null,
        "items": [
            {"description": "弁当", "quantity": 1, "unitPrice": 600, "amount": 600},
            {"description": "お茶", "quantity": 2, "unitPrice": 250, "amount": 500}
        ]
    });
    assert!(failed(&yen).is_empty(), "{:?}", check(Some(&yen), ctx()));
    let mut cents = yen.clone();
    cents["total"] = json!(1100.5);
    assert!(failed(&cents).contains(&"currency".to_string()));
    assert_eq!(digits_of("KWD"), Some(3));
    assert_eq!(digits_of("JPY"), Some(0));
}

#[test]
fn an_answer_outside_the_schema_is_a_failed_check() {
    let checks = check(
        Some(&json!({"merchant": "Cafe", "total": 12.5, "items": []})),
        ctx(),
    );
    assert_eq!(checks.len(), 1);
    assert!(
        !checks[0].passed && checks[0].name == "schema",
        "{checks:?}"
    );
    assert!(
        checks[0].detail.contains("required"),
        "{}",
        checks[0].detail
    );
    let none = check(None, ctx());
    assert!(!none[0].passed);
}
