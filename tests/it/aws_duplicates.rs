//! The duplicate index on DynamoDB (moto), through the real SDK: a digest is claimed by one
//! conditional put; the same first claiming again is a replay; another image of the digest is
//! its duplicate until the window closes, and then the first of a new window. Followers and
//! near marks are kept under the first's intent, and the first's result is read back.
//! Skipped (and passing) without `BO_AWS_ENDPOINT`; CI sets `BO_REQUIRE_AWS_TESTS`.

use chrono::{Duration, Utc};
use shared::domain::duplicates::{Claim, FirstCopy, Follower, NearMark, PossibleDuplicateOf, Seen};
use shared::domain::ids::{IntentId, JobId, ObjectKey, RecordId, UserId};
use shared::domain::results::ImageResult;

fn first(intent: &str, record: &str, key: &str) -> FirstCopy {
    let intent_id = IntentId::parse(intent).expect("id");
    FirstCopy {
        job_id: JobId::for_intent(&intent_id),
        intent_id,
        record_id: RecordId::parse(record).expect("id"),
        index: record.trim_start_matches("r-").parse().expect("index"),
        image_key: ObjectKey::parse(key).expect("key"),
    }
}

#[tokio::test]
async fn when_copies_of_one_image_are_claimed_on_aws_should_keep_one_first_per_window() {
    let Some(deps) = crate::common::moto_deps("dups").await else {
        return;
    };
    let d = &deps.duplicates;
    let user = UserId::parse("u-dups").expect("user");
    let now = Utc::now();
    let seen = |f: FirstCopy, at| Seen {
        digest: "abc123".into(),
        perceptual: None,
        first: f,
        seen_at: at,
        expires_at: at + Duration::days(30),
    };
    let a = first("u-dups.one", "r-0", "uploads/u-dups/a.jpg");
    let b = first("u-dups.two", "r-3", "uploads/u-dups/b.jpg");
    assert_eq!(
        d.claim(&user, &seen(a.clone(), now), now)
            .await
            .expect("claim"),
        Claim::First
    );
    assert_eq!(
        d.claim(&user, &seen(a.clone(), now), now)
            .await
            .expect("replay"),
        Claim::First,
        "the same first again is a replay"
    );
    assert_eq!(
        d.claim(&user, &seen(b.clone(), now), now)
            .await
            .expect("claim"),
        Claim::Duplicate(a.clone())
    );
    let recent = d.recent(&user, now, 10).await.expect("recent");
    assert_eq!(recent.len(), 1, "a replay adds no second item");
    let digest = "abc123".to_string();
    let known = d
        .known(&user, &[digest.clone(), "other".into()], now)
        .await
        .expect("known");
    assert_eq!(known, vec![digest.clone()]);
    // Past the window, the next image of the digest is the first of a new one.
    let later = now + Duration::days(31);
    assert_eq!(
        d.claim(&user, &seen(b.clone(), later), later)
            .await
            .expect("claim"),
        Claim::First
    );
    assert_eq!(
        d.recent(&user, later, 10).await.expect("recent")[0].first,
        b
    );
    assert_eq!(
        d.known(&user, &[digest], later + Duration::days(31))
            .await
            .expect("known"),
        Vec::<String>::new()
    );
    // Replacing a first whose owner cancelled it: only while the item still names it.
    let c = first("u-dups.three", "r-0", "uploads/u-dups/c.jpg");
    assert_eq!(
        d.replace(&user, &seen(c.clone(), later), &a, later)
            .await
            .expect("replace"),
        Claim::Duplicate(b.clone()),
        "the item names b now, not a"
    );
    assert_eq!(
        d.replace(&user, &seen(c.clone(), later), &b, later)
            .await
            .expect("replace"),
        Claim::First
    );
    assert_eq!(
        d.recent(&user, later, 10).await.expect("recent")[0].first,
        c
    );
    // A follower and a near mark under the first's intent; the first's result read back.
    let follower = Follower {
        first: a.clone(),
        intent_id: b.intent_id.clone(),
        record_id: b.record_id.clone(),
        index: 3,
        image_key: b.image_key.clone(),
    };
    d.follow(&follower, now + Duration::days(30))
        .await
        .expect("follow");
    d.follow(&follower, now + Duration::days(30))
        .await
        .expect("again");
    let mark = NearMark {
        record_id: RecordId::parse("r-1").expect("id"),
        of: PossibleDuplicateOf {
            job_id: b.job_id.clone(),
            image_key: b.image_key.clone(),
            distance: 9,
        },
    };
    d.mark_near(&a.intent_id, &mark, now + Duration::days(30))
        .await
        .expect("mark");
    let (followers, near) = d.under(&a.intent_id).await.expect("under");
    assert_eq!((followers, near), (vec![follower], vec![mark]));
    assert_eq!(d.first_result(&a).await.expect("read"), None);
    let answer = ImageResult::skipped(a.record_id.clone(), 0, a.image_key.clone(), "x");
    deps.results
        .put_results(&a.intent_id, std::slice::from_ref(&answer))
        .await
        .expect("put");
    assert_eq!(d.first_result(&a).await.expect("read"), Some(answer));
    // The index's partitions never show among the intent's own results.
    let listed = deps
        .results
        .list_results(&a.intent_id, None, 10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
}
