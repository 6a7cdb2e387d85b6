use super::*;
use chrono::TimeZone as _;

fn first() -> FirstCopy {
    let intent = IntentId::parse("u1.a").expect("id");
    FirstCopy {
        job_id: JobId::for_intent(&intent),
        intent_id: intent,
        record_id: RecordId::parse("r-0").expect("id"),
        index: 0,
        image_key: ObjectKey::parse("uploads/u1/a.jpg").expect("key"),
    }
}

/// Bands across (`across`) or down a page, `period` px wide.
fn stripes(period: u32, across: bool) -> String {
    let img = image::GrayImage::from_fn(256, 256, |x, y| {
        let band = if across { y / period } else { x / period };
        image::Luma([if band.is_multiple_of(2) { 30 } else { 220 }])
    });
    double_gradient(&img)
}

/// `image_hasher`'s double gradient as the pipeline configured it before it was written here.
fn image_hasher_hash(img: &image::GrayImage) -> String {
    image_hasher::HasherConfig::new()
        .hash_size(HASH_SIDE, HASH_SIDE)
        .hash_alg(image_hasher::HashAlg::DoubleGradient)
        .to_hasher()
        .hash_image(img)
        .to_base64()
}

#[test]
fn when_hashing_should_give_image_hashers_double_gradient_bit_for_bit() {
    // Stripes, a gradient, noise, and an odd-sized page: every hash equal to the crate's.
    let noise =
        |x: u32, y: u32| ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7) as u8;
    let images = [
        image::GrayImage::from_fn(256, 256, |_, y| {
            image::Luma([if (y / 9) % 2 == 0 { 30 } else { 220 }])
        }),
        image::GrayImage::from_fn(300, 170, |x, y| image::Luma([((x + 2 * y) % 256) as u8])),
        image::GrayImage::from_fn(257, 311, |x, y| image::Luma([noise(x, y)])),
        image::GrayImage::from_fn(40, 900, |x, y| image::Luma([noise(y, x) / 2 + 60])),
    ];
    for img in &images {
        assert_eq!(double_gradient(img), image_hasher_hash(img));
    }
    let (a, b) = (image_hasher_hash(&images[0]), image_hasher_hash(&images[2]));
    let ours = distance(&double_gradient(&images[0]), &double_gradient(&images[2]));
    let theirs = image_hasher::ImageHash::<Box<[u8]>>::from_base64(&a)
        .and_then(|a| image_hasher::ImageHash::<Box<[u8]>>::from_base64(&b).map(|b| a.dist(&b)))
        .ok();
    assert_eq!(ours, theirs, "the same distance");
    assert!(ours.is_some_and(|d| d > 0));
}

fn seen(digest: &str, perceptual: String, now: DateTime<Utc>) -> Seen {
    Seen {
        digest: digest.into(),
        perceptual: Some(perceptual),
        first: first(),
        seen_at: now,
        expires_at: now + chrono::Duration::days(30),
    }
}

#[test]
fn when_digesting_should_tell_models_and_prompts_apart() {
    let haiku = ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("id");
    let nova = ModelId::parse("us.amazon.nova-lite-v1:0").expect("id");
    let a = digest(&haiku, "receipt-v2", b"jpeg");
    assert_eq!(a, digest(&haiku, "receipt-v2", b"jpeg"));
    assert_ne!(a, digest(&nova, "receipt-v2", b"jpeg"));
    assert_ne!(a, digest(&haiku, "receipt-v1", b"jpeg"));
    assert_ne!(a, digest(&haiku, "receipt-v2", b"jpeh"));
}

#[test]
fn when_a_copy_is_answered_from_its_first_should_cost_nothing_and_say_what_it_saved() {
    let mut answer = ImageResult::skipped(
        RecordId::parse("r-0").expect("id"),
        0,
        ObjectKey::parse("uploads/u1/a.jpg").expect("key"),
        "",
    );
    (answer.status, answer.error_code, answer.error_message) =
        (ResultStatus::Succeeded, None, None);
    (answer.input_tokens, answer.output_tokens, answer.attempts) = (900, 300, 1);
    answer.text = Some("{\"total\": 9.5}".into());
    let follower = Follower {
        first: first(),
        intent_id: IntentId::parse("u1.b").expect("id"),
        record_id: RecordId::parse("r-7").expect("id"),
        index: 7,
        image_key: ObjectKey::parse("uploads/u1/b.jpg").expect("key"),
    };
    let copy = follower_result(&answer, &follower);
    assert_eq!(copy.status, ResultStatus::Succeeded);
    assert_eq!(copy.text, answer.text);
    assert_eq!(
        (copy.input_tokens, copy.output_tokens, copy.attempts),
        (0, 0, 0)
    );
    assert_eq!((copy.record_id.as_str(), copy.image_index), ("r-7", 7));
    let of = copy.duplicate_of.expect("duplicateOf");
    assert_eq!(of.image_key.as_str(), "uploads/u1/a.jpg");
    assert_eq!((of.saved_input_tokens, of.saved_output_tokens), (900, 300));
    // A cancelled first leaves its copies failed, with a reason.
    answer.status = ResultStatus::Canceled;
    let copy = follower_result(&answer, &follower);
    assert_eq!(copy.status, ResultStatus::Failed);
    assert!(copy
        .error_message
        .expect("why")
        .contains("uploads/u1/a.jpg"));
}

#[test]
fn when_looking_for_a_near_copy_should_skip_itself_the_expired_and_the_far() {
    let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    let h = stripes(9, true);
    assert_eq!(distance(&h, &h), Some(0));
    // The same digest is the image itself, never its own near copy.
    assert_eq!(nearest(&[seen("d1", h.clone(), now)], "d1", &h, now), None);
    let near = nearest(&[seen("d0", h.clone(), now)], "d1", &h, now).expect("near");
    assert_eq!(near.distance, 0);
    // Past its window it answers nothing.
    let late = now + chrono::Duration::days(31);
    assert_eq!(nearest(&[seen("d0", h.clone(), now)], "d1", &h, late), None);
    // A different picture is far.
    let other = stripes(9, false);
    assert!(distance(&h, &other).expect("distance") > NEAR_DISTANCE);
    assert_eq!(nearest(&[seen("d0", other, now)], "d1", &h, now), None);
}

#[test]
fn when_two_images_claim_one_digest_should_let_only_an_earlier_image_of_the_same_intent_take_over()
{
    let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    let stored = Seen {
        digest: "d".into(),
        perceptual: None,
        first: FirstCopy {
            index: 5,
            record_id: RecordId::parse("r-5").expect("id"),
            ..first()
        },
        seen_at: now,
        expires_at: now + chrono::Duration::days(30),
    };
    let earlier = first();
    assert!(
        takes_over(&stored, &earlier, now),
        "index 0 of the same intent"
    );
    assert!(
        !takes_over(&stored, &stored.first, now),
        "the same image is a replay: first without a write"
    );
    let later = FirstCopy {
        index: 9,
        record_id: RecordId::parse("r-9").expect("id"),
        ..first()
    };
    assert!(!takes_over(&stored, &later, now));
    let other_intent = FirstCopy {
        intent_id: IntentId::parse("u1.b").expect("id"),
        ..first()
    };
    assert!(
        !takes_over(&stored, &other_intent, now),
        "another request never"
    );
    let past = now + chrono::Duration::days(31);
    assert!(
        takes_over(&stored, &other_intent, past),
        "past the window anyone"
    );
}
