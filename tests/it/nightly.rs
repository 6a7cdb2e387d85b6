//! The uploads index (filled from S3 "Object Created" events through intake), the sharded
//! prefix listing it falls back to, and the nightly run: one intent per user and day.

use crate::common::*;
use batch_orchestrator::embedded::object_created_event;
use batch_orchestrator::samples::receipt_png;
use chrono::NaiveDate;
use serde_json::json;
use shared::domain::bedrock::S3Uri;
use shared::domain::ids::{ObjectKey, UserId};
use shared::domain::intent::ImageSelection;
use shared::domain::status::IntentStatus;
use shared::domain::uploads::nightly_intent_id;
use shared::ports::ObjectStore as _;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")
}

#[tokio::test]
async fn when_objects_are_created_should_index_them_once_and_ignore_what_is_not_an_upload() {
    let app = app().await;
    let user = UserId::parse(SAMPLE_USER).expect("user");
    // `app` uploaded the three samples through the S3 event path.
    let indexed = app.deps.uploads.uploads(&user, day()).await.expect("index");
    assert_eq!(indexed.len(), 3);
    assert!(indexed.iter().all(|u| u.size > 0 && !u.etag.is_empty()));

    // A duplicated event changes nothing.
    let bucket = app.deps.settings.uploads_bucket.to_string();
    let again = object_created_event(&bucket, SAMPLE_KEYS[0], 1, "x", app.deps.clock.now());
    assert_eq!(app.intake(again.clone()).await["indexed"], true);
    assert_eq!(app.intake(again).await["indexed"], true);
    assert_eq!(
        app.deps
            .uploads
            .uploads(&user, day())
            .await
            .expect("index")
            .len(),
        3
    );

    // Not an upload: another bucket, or a key outside uploads/{user}/{day}/.
    for (b, k) in [
        ("some-other-bucket", SAMPLE_KEYS[0]),
        (bucket.as_str(), "uploads/user-123/notes.txt"),
        (bucket.as_str(), "thumbnails/user-123/2026-11-28/a.png"),
    ] {
        let answer = app
            .intake(object_created_event(b, k, 1, "e", app.deps.clock.now()))
            .await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        assert_eq!(answer["indexed"], false, "{answer}");
    }
    assert_eq!(
        app.deps.uploads.users(day()).await.expect("users"),
        vec![user]
    );
}

#[tokio::test]
async fn when_the_nightly_schedule_runs_twice_should_make_one_intent_per_user_and_day() {
    let app = app().await;
    for i in 0..2 {
        app.upload(
            &format!("uploads/user-456/2026-11-28/r{i}.png"),
            receipt_png(40 + i),
        )
        .await
        .expect("upload");
    }
    app.upload("uploads/user-789/2026-11-27/old.png", receipt_png(50))
        .await
        .expect("upload");

    let first = app
        .intake(json!({"nightlyRun": {"day": "2026-11-28"}}))
        .await;
    assert_eq!(first["statusCode"], 200, "{first}");
    assert_eq!(
        (first["users"].as_u64(), first["created"].as_u64()),
        (Some(2), Some(2))
    );
    let second = app
        .intake(json!({"nightlyRun": {"day": "2026-11-28"}}))
        .await;
    assert_eq!(
        (second["created"].as_u64(), second["existing"].as_u64()),
        (Some(0), Some(2))
    );
    run(&app).await;
    let replay = app
        .intake(json!({"nightlyRun": {"day": "2026-11-28"}}))
        .await;
    assert_eq!(replay["existing"], 2, "{replay}");
    run(&app).await;

    let all = intents(&app);
    assert_eq!(all.len(), 2, "one intent per user with uploads that day");
    for (user, images) in [(SAMPLE_USER, 3), ("user-456", 2)] {
        let user = UserId::parse(user).expect("user");
        let i = all
            .iter()
            .find(|i| i.user_id == user)
            .expect("the user's nightly intent");
        assert_eq!(i.intent_id, nightly_intent_id(&user, day()));
        assert_eq!(i.selection, ImageSelection::Day(day()));
        assert_eq!(i.status, IntentStatus::Completed);
        assert_eq!(results(&app, i).await.len(), images);
    }
    assert_eq!(count(&published(&app), "BATCH_REQUESTED"), 2);

    let bad = app
        .intake(json!({"nightlyRun": {"day": "28/11/2026"}}))
        .await;
    assert_eq!(bad["statusCode"], 400, "{bad}");
    assert_eq!(bad["field"], "nightlyRun.day");
}

#[tokio::test]
async fn when_the_index_has_nothing_should_list_the_prefix_in_shards_and_miss_no_key() {
    let app = app().await;
    // Objects stored before the index existed: no event reached intake.
    let names = [
        "-a.png",
        "0",
        "0.png",
        "3z.png",
        "4",
        "4a.png",
        "Zz.png",
        "a.png",
        "k",
        "w.png",
        "x.png",
        "~tilde.png",
    ];
    for (i, name) in names.iter().enumerate() {
        let key = ObjectKey::parse(&format!("uploads/user-900/2026-11-28/{name}")).expect("key");
        app.objects
            .put(
                &S3Uri::object(&app.deps.settings.uploads_bucket, &key),
                receipt_png(60 + i),
            )
            .await
            .expect("put");
    }
    let prefix = "uploads/user-900/2026-11-28/";
    let listed =
        shared::app::uploads::list_sharded(&app.deps, &app.deps.settings.uploads_bucket, prefix)
            .await
            .expect("list");
    let got: Vec<&str> = listed
        .iter()
        .map(|k| k.as_str().trim_start_matches(prefix))
        .collect();
    let mut want = names.to_vec();
    want.sort();
    assert_eq!(got, want, "every key once, in key order");

    let answer = app
        .intake(json!({"intentId": "fallback", "userId": "user-900", "day": "2026-11-28"}))
        .await;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    run(&app).await;
    let i = intents(&app)
        .into_iter()
        .find(|i| i.client_id().as_str() == "fallback")
        .expect("intent");
    assert_eq!(i.images.len(), names.len());
    assert_eq!(i.status, IntentStatus::Completed);
}
