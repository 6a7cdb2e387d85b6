//! A real night's shapes on the embedded backend: Bedrock's minimum on every job after a split,
//! a request of 50,000 images, and a shared job of 5,000 members, with the intent item small
//! whatever the size (long lists live in S3, see `shared::app::lists`).

use crate::common::*;
use shared::domain::intent::{BatchIntent, ImageSelection, INLINE_LIST};
use shared::domain::settings::Settings;
use shared::domain::status::IntentStatus;
use shared::ports::{IntentStore as _, ObjectStore as _};

/// A DynamoDB item holds at most 400 KB; an intent's JSON body is most of its item.
const ITEM_LIMIT: usize = 400 * 1024;

fn body_size(intent: &BatchIntent) -> usize {
    serde_json::to_vec(intent).expect("intent JSON").len()
}

/// Uploads one image (normalized at upload, as every upload is) and makes `n - 1` hard links
/// to it and to its normalized copy under `key(i)`: every key is its own object, normalized
/// as a night finds it, and the disk holds one image.
pub(crate) async fn store_many(app: &TestApp, n: usize, key: impl Fn(usize) -> String) {
    let first = app
        .upload(&key(0), batch_orchestrator::samples::receipt_png(7))
        .await
        .expect("upload");
    let bucket = &app.deps.settings.uploads_bucket;
    let paths = |k: &shared::domain::ids::ObjectKey| {
        let original = shared::domain::bedrock::S3Uri::object(bucket, k);
        let copy =
            shared::app::normalized::normalized_uri(&app.deps, k, 1568).expect("a short key");
        [original, copy].map(|u| app.objects.path_of(&u).expect("path"))
    };
    let srcs = paths(&first);
    assert!(srcs[1].exists(), "normalized at upload");
    for i in 1..n {
        let k = shared::domain::ids::ObjectKey::parse(&key(i)).expect("key");
        for (src, dest) in srcs.iter().zip(paths(&k)) {
            std::fs::create_dir_all(dest.parent().expect("dir")).expect("mkdir");
            std::fs::hard_link(src, dest).expect("link");
        }
    }
}

async fn manifest_lines(app: &TestApp, intent: &BatchIntent) -> usize {
    let mut n = 0;
    for part in intent.jobs.iter().flat_map(|j| j.parts.iter()) {
        let body = app.objects.get(&part.uri).await.expect("part");
        n += body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
    }
    n
}

#[tokio::test]
async fn when_130_images_meet_a_cap_of_110_and_a_minimum_of_100_should_all_succeed_in_jobs_of_at_least_100(
) {
    let app = app_with(|o| {
        o.settings.quotas.min_records_per_job = 100;
        o.settings.quotas.max_records_per_job = 110;
        o.settings.quotas.max_records_per_file = 110;
        o.settings.pool_below_records = Settings::local("x").pool_below_records;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    for i in 0..130 {
        let key = format!("uploads/{SAMPLE_USER}/2026-11-29/r-{i:03}.png");
        app.upload(&key, batch_orchestrator::samples::receipt_png(i + 20))
            .await
            .expect("upload");
    }
    let intent = run_day(&app, "day-130", "2026-11-29").await;
    let counts = intent.counts.as_ref().expect("counts");
    assert_eq!(counts.success_record_count, 130, "every image, no pad");
    assert_eq!(counts.total_record_count, 130);
    assert_eq!(intent.jobs.len(), 2);
    for job in &intent.jobs {
        assert!(
            (100..=110).contains(&job.records()),
            "job {} has {} records",
            job.job_no,
            job.records()
        );
    }
    assert_eq!(
        intent.jobs.iter().map(|j| j.pad_records).sum::<u64>(),
        70,
        "balanced 100 + 30, the 30 padded to 100"
    );
    assert_eq!(app.emulator.job_count().expect("jobs"), 2);
    let ok = results(&app, &intent)
        .await
        .iter()
        .filter(|r| r.status == shared::domain::results::ResultStatus::Succeeded)
        .count();
    assert_eq!(ok, 130);
}

#[tokio::test]
async fn when_a_request_names_50000_images_should_accept_it_and_build_one_job_with_a_small_intent_item(
) {
    let app = app().await;
    let key = |i: usize| format!("uploads/{SAMPLE_USER}/2026-11-27/p{i:05}.png");
    store_many(&app, 50_000, key).await;
    let keys: Vec<String> = (0..50_000).map(key).collect();
    let answer = app
        .intake(serde_json::json!({"intentId": "fifty-k", "userId": SAMPLE_USER, "images": keys}))
        .await;
    assert_eq!(status(&answer), 202, "{answer}");
    let id = stored_key("fifty-k");
    let stored = app.store.get(&id).await.expect("get").expect("intent");
    assert!(
        matches!(
            stored.selection,
            ImageSelection::KeyList { count: 50_000, .. }
        ),
        "the keys live in a list, not the item"
    );
    assert!(
        body_size(&stored) < 8 * 1024,
        "{} bytes",
        body_size(&stored)
    );

    shared::app::manifest::build_manifest(&app.deps, &id)
        .await
        .expect("manifest");
    let built = app.store.get(&id).await.expect("get").expect("intent");
    assert_eq!(built.status, IntentStatus::ManifestReady);
    assert!(built.images.is_empty());
    let list = built.image_list.as_ref().expect("image list");
    assert_eq!((list.count, list.rejected), (50_000, 0));
    assert_eq!(built.jobs.len(), 1, "one job: Bedrock's record quota");
    assert_eq!(built.jobs[0].records(), 50_000);
    assert_eq!(manifest_lines(&app, &built).await, 50_000);
    let size = body_size(&built);
    assert!(size < ITEM_LIMIT / 10, "intent item of {size} bytes");
    let listed = shared::app::lists::images(&app.deps, &built)
        .await
        .expect("images");
    assert_eq!(listed.len(), 50_000);
    assert_eq!(listed[49_999].key.as_str(), key(49_999));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_5000_small_intents_pool_should_run_one_shared_job_of_5000_members() {
    const MEMBERS: usize = 5_000;
    let app = app_with(|o| {
        o.settings.quotas.min_records_per_job = MEMBERS as u64;
        o.settings.max_open_intents_per_user = MEMBERS;
        o.emulator.quotas = o.settings.quotas.clone();
    })
    .await;
    for i in 0..MEMBERS {
        let k = SAMPLE_KEYS[i % SAMPLE_KEYS.len()];
        let answer = app.intake(direct(&format!("m-{i:04}"), &[k])).await;
        assert_eq!(status(&answer), 202, "{answer}");
    }
    run(&app).await;
    let all = intents(&app);
    let shared: Vec<&BatchIntent> = all.iter().filter(|i| i.is_pool_job()).collect();
    assert_eq!(shared.len(), 1, "one shared job");
    let pool = shared[0];
    assert_eq!(pool.status, IntentStatus::Completed);
    assert_eq!(pool.selection.member_count(), MEMBERS);
    assert!(
        matches!(&pool.selection, ImageSelection::Pool { members, member_list: Some(_), .. } if members.is_empty()),
        "past {INLINE_LIST} members the list lives in S3"
    );
    let size = body_size(pool);
    assert!(size < ITEM_LIMIT / 10, "shared job item of {size} bytes");
    assert_eq!(app.emulator.job_count().expect("jobs"), 1);
    let members: Vec<&BatchIntent> = all.iter().filter(|i| !i.is_pool_job()).collect();
    assert_eq!(members.len(), MEMBERS);
    assert!(members.iter().all(|m| m.status == IntentStatus::Completed
        && m.counts
            .as_ref()
            .is_some_and(|c| c.success_record_count == 1)));
}
