//! The app use cases called directly, at the edges the cross-stage tests reach only through a
//! whole pipeline: the watcher's decoding of what arrives on its queue, the lists' refusals,
//! and the outbox sweep.

use crate::common::*;
use shared::app::status::{list_jobs, list_results, ListError};
use shared::app::watch::apply_envelope;
use shared::app::Outcome;
use shared::domain::events::Envelope;
use shared::domain::ids::{JobId, UserId};

fn envelope(name: &str) -> Envelope {
    serde_json::from_value(event(name)).expect("envelope")
}

#[tokio::test]
async fn when_the_watcher_gets_what_is_not_a_state_change_should_refuse_it_for_good_and_write_nothing(
) {
    let app = app().await;
    let ours = envelope("eventbridge-batch-requested.json");
    let e = apply_envelope(&app.deps, ours)
        .await
        .expect_err("not Bedrock's");
    assert!(!e.is_retryable(), "{e}");
    assert!(
        e.to_string()
            .contains("expected a Bedrock job state change"),
        "{e}"
    );
    let mut unknown = envelope("eventbridge-bedrock-state-change.json");
    unknown.detail["status"] = serde_json::json!("Hibernating");
    let outcome = apply_envelope(&app.deps, unknown).await.expect("ignored");
    assert_eq!(outcome, Outcome::Unknown("status Hibernating".into()));
    // A state change for a job no intent owns (the sample's job id has no intent here).
    let stray = apply_envelope(&app.deps, envelope("eventbridge-bedrock-state-change.json"))
        .await
        .expect("ignored");
    assert!(matches!(stray, Outcome::Unknown(_)), "{stray:?}");
    assert!(intents(&app).is_empty(), "nothing written");
    assert!(published(&app).is_empty(), "nothing emitted");
}

#[tokio::test]
async fn when_a_list_is_asked_with_a_bad_cursor_or_for_another_users_job_should_refuse_it() {
    let app = app().await;
    let answer = app.intake(direct("uc-1", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    let job = JobId::parse(answer["jobId"].as_str().expect("jobId")).expect("job id");
    let owner = UserId::parse(SAMPLE_USER).expect("user");
    let stranger = UserId::parse("user-456").expect("user");
    // The list reads an index, which shows a new intent once its lag has passed.
    let lag = INDEX_LAG + chrono::Duration::seconds(1);
    app.manual_clock().expect("manual").advance(lag);
    let page = list_jobs(&app.deps, &owner, None, 10, None).await;
    assert!(matches!(&page, Ok(p) if p.jobs.len() == 1), "{page:?}");
    let bad = list_jobs(&app.deps, &owner, None, 10, Some("yesterday")).await;
    assert!(matches!(bad, Err(ListError::BadCursor(_))), "{bad:?}");
    let theirs = list_results(&app.deps, &stranger, &job, (10, None), None).await;
    assert!(
        matches!(&theirs, Err(ListError::NoJob(j)) if j == &job),
        "{theirs:?}"
    );
    let mine = list_results(&app.deps, &owner, &job, (10, Some("")), None).await;
    assert!(matches!(mine, Err(ListError::BadCursor(_))), "{mine:?}");
    let mine = list_results(&app.deps, &owner, &job, (10, None), None).await;
    assert!(
        matches!(&mine, Ok(p) if p.results.is_empty()),
        "no results yet: {mine:?}"
    );
}

#[tokio::test]
async fn when_an_outbox_is_orphaned_should_be_swept_once_after_its_grace() {
    let app = app().await;
    app.bus.fail_next_publishes(1);
    let answer = app.intake(direct("uc-2", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 503, "{answer}");
    assert!(published(&app).is_empty());
    let sweep = || shared::app::outbox::sweep_outboxes(&app.deps, 10);
    assert_eq!(
        sweep().await.expect("sweep"),
        0,
        "within its grace, the writer may still publish"
    );
    let grace = chrono::Duration::seconds(app.deps.settings.outbox_grace_secs + 1) + INDEX_LAG;
    app.manual_clock().expect("manual").advance(grace);
    assert_eq!(sweep().await.expect("sweep"), 1);
    assert_eq!(sweep().await.expect("sweep"), 0, "published once");
    assert_eq!(published(&app), ["BATCH_REQUESTED"]);
}
