//! What batches really cost: `GET /api/batch/usage` and `report --day` price every result's
//! own tokens at the configured prices, batch or on-demand as each ran.

use crate::common::*;
use batch_orchestrator::http_api::http_api_event_with_query;
use shared::domain::results::ResultStatus;

async fn usage(app: &TestApp, user: &str, query: &[(&str, &str)]) -> serde_json::Value {
    let q = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    app.intake(http_api_event_with_query(
        "GET",
        "/api/batch/usage",
        Some(user),
        &q,
        "",
    ))
    .await
}

#[tokio::test]
async fn when_a_night_ran_should_price_every_results_tokens_per_user_and_in_the_report() {
    let app = app().await;
    let answer = app.intake(direct("costed", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let intent = intent_named(&app, "costed");
    let rs = results(&app, &intent).await;
    assert!(rs.iter().all(|r| r.status == ResultStatus::Succeeded));
    // The truth: every result's tokens at the catalog's price, batch at half.
    let price = app
        .deps
        .settings
        .price_for(&intent.model_id)
        .expect("priced");
    let (input, output): (u64, u64) = rs.iter().fold((0, 0), |(i, o), r| {
        (i + r.input_tokens, o + r.output_tokens)
    });
    assert!(input > 0 && output > 0, "the emulator counts tokens");
    let on_demand =
        (input as f64 * price.input_per_mtok + output as f64 * price.output_per_mtok) / 1e6;
    let round = |x: f64| (x * 1e6).round() / 1e6;
    let today = app.deps.clock.now().date_naive().to_string();

    let answer = app
        .intake(http_api_event_with_query(
            "GET",
            "/api/batch/usage",
            Some(SAMPLE_USER),
            &[
                ("from".to_owned(), today.clone()),
                ("to".to_owned(), today.clone()),
            ]
            .into_iter()
            .collect(),
            "",
        ))
        .await;
    assert_eq!(status(&answer), 200, "{answer}");
    let b = body(&answer);
    assert_eq!(b["total"]["images"], SAMPLE_KEYS.len(), "{b}");
    assert_eq!(b["total"]["inputTokens"], input);
    assert_eq!(b["total"]["outputTokens"], output);
    assert_eq!(b["total"]["onDemandUsd"].as_f64(), Some(round(on_demand)));
    assert_eq!(
        b["total"]["costUsd"].as_f64(),
        Some(round(on_demand * 0.5)),
        "ran in batch"
    );
    assert_eq!(b["days"].as_array().map(Vec::len), Some(1));
    assert!(b["pricesAsOf"].is_string() && b["pricesSource"].is_string());

    // `report --day`'s figures: the same, per user, and nobody else's.
    let day = app.deps.clock.now().date_naive();
    let all = app.store.all().expect("intents");
    let users = shared::app::usage::day_report(&app.deps, &all, day)
        .await
        .expect("report");
    assert_eq!(users.len(), 1);
    let u = users.values().next().expect("user").usage;
    assert_eq!((u.input_tokens, u.output_tokens), (input, output));
    assert_eq!(u.cost_usd, round(on_demand * 0.5));

    // Another user's usage is theirs: none of this.
    let other = body(&usage(&app, "someone-else", &[]).await);
    assert_eq!(other["total"]["images"], 0, "{other}");
}

#[tokio::test]
async fn when_the_range_is_backwards_or_too_long_should_refuse_naming_the_field() {
    let app = app().await;
    for (query, field) in [
        (vec![("from", "2026-12-03"), ("to", "2026-12-01")], "from"),
        (vec![("from", "2026-01-01"), ("to", "2026-12-01")], "to"),
        (vec![("from", "2026-1-1")], "from"),
    ] {
        let answer = usage(&app, SAMPLE_USER, &query).await;
        assert_eq!(status(&answer), 400, "{answer}");
        assert_eq!(body(&answer)["field"], field, "{answer}");
    }
}
