//! The per-user counters, the on-demand rate budget and the leases on DynamoDB (moto), through
//! the real SDK: each conditional `ADD` or `SET` passes while its condition holds and is
//! refused after, leaving the item as it was. One write at a time: moto does not serialize
//! concurrent updates of one item (see `aws_history.rs`), so a race here would test moto.
//! Skipped (and passing) without `BO_AWS_ENDPOINT`; CI sets `BO_REQUIRE_AWS_TESTS`.

use shared::domain::ids::{IntentId, UserId};

#[tokio::test]
async fn when_counters_leases_and_rates_move_on_aws_should_stop_exactly_at_their_limits() {
    let Some(deps) = crate::common::moto_deps("limits").await else {
        return;
    };
    let a = &deps.allowances;
    let user = UserId::parse("u-limits").expect("user");
    let id = |n: usize| IntentId::parse(&format!("i-{n}")).expect("id");
    // Open intents: 3 places; a retry of a counted one takes none; a freed one is free again.
    for n in 0..3 {
        assert!(a.open(&user, &id(n), 3).await.expect("open"), "place {n}");
    }
    assert!(!a.open(&user, &id(3), 3).await.expect("open"), "full");
    assert!(
        a.open(&user, &id(1), 3).await.expect("open"),
        "a retry of a counted one"
    );
    a.close(&user, &id(1)).await.expect("close");
    a.close(&user, &id(1)).await.expect("close again");
    assert!(
        a.open(&user, &id(3), 3).await.expect("open"),
        "the freed place"
    );
    let mut open = a.open_intents(&user).await.expect("list");
    open.sort();
    assert_eq!(open, vec![id(0), id(2), id(3)]);
    // Images of a day: 10 at most.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).expect("day");
    assert!(a.take_images(&user, day, 6, 10).await.expect("take"));
    assert!(
        !a.take_images(&user, day, 5, 10).await.expect("take"),
        "11 > 10"
    );
    assert!(
        a.take_images(&user, day, 4, 10).await.expect("take"),
        "exactly 10"
    );
    a.give_back_images(&user, day, 4).await.expect("give back");
    assert!(
        a.take_images(&user, day, 4, 10).await.expect("take"),
        "given back"
    );
    assert!(!a.take_images(&user, day, 1, 10).await.expect("take"));
    // A rate window: 2 requests or 1,000 tokens, whichever comes first.
    let w = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("window");
    let r = &deps.rates;
    assert!(r.take("m", w, 600, (2, 1_000)).await.expect("take"));
    assert!(
        !r.take("m", w, 600, (2, 1_000)).await.expect("take"),
        "1,200 tokens"
    );
    r.correct("m", w, -300).await.expect("correct");
    assert!(
        r.take("m", w, 600, (2, 1_000)).await.expect("take"),
        "900 tokens"
    );
    assert!(
        !r.take("m", w, 1, (2, 1_000)).await.expect("take"),
        "a third request"
    );
    // A lease: its holder renews it, another holder waits until it runs out.
    let l = &deps.leases;
    let t0 = chrono::Utc::now();
    let later = |s: i64| t0 + chrono::Duration::seconds(s);
    assert!(l.take("job", "a", t0, later(60)).await.expect("take"));
    assert!(
        !l.take("job", "b", later(1), later(61)).await.expect("take"),
        "held"
    );
    assert!(l
        .take("job", "a", later(2), later(62))
        .await
        .expect("renew"));
    assert!(
        l.take("job", "b", later(63), later(123))
            .await
            .expect("take"),
        "expired"
    );
    l.release("job", "a")
        .await
        .expect("release of a lost lease");
    assert!(
        !l.take("job", "a", later(64), later(124))
            .await
            .expect("take"),
        "b holds it"
    );
    l.release("job", "b").await.expect("release");
    assert!(l
        .take("job", "a", later(65), later(125))
        .await
        .expect("take"));
}
