//! Real phone photos, as a new user uploads them: a 12 MP JPEG stored sideways with EXIF
//! orientation 6, a 50 MP JPEG, a screenshot PNG and a 12 MP WebP all succeed; a PNG whose
//! header claims 60000x60000 and a truncated JPEG are skipped with a reason; every manifest
//! line is at most 600,000 bytes, and the 12 MP photo reaches the model upright: under the
//! default economy policy, the receipt alone in grey.

use crate::common::*;
use base64::Engine as _;
use shared::domain::results::ResultStatus;
use shared::ports::ObjectStore as _;

const DAY: &str = "2026-11-26";

fn key(name: &str) -> String {
    format!("uploads/{SAMPLE_USER}/{DAY}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_user_uploads_phone_photos_should_run_the_good_ones_upright_and_skip_the_bad_with_a_reason(
) {
    let app = app().await;
    let files = batch_orchestrator::samples::phone_samples();
    assert!(
        files[1].1.len() > 3_932_160,
        "the 50 MP photo is over Bedrock's 3.75 MB"
    );
    for (name, bytes) in files {
        app.upload(&key(name), bytes).await.expect("upload");
    }
    let intent = run_day(&app, "photos", DAY).await;
    let results = results(&app, &intent).await;
    let by_key = |name: &str| {
        results
            .iter()
            .find(|r| r.image_key.as_str() == key(name))
            .unwrap_or_else(|| panic!("no result for {name}"))
    };
    for name in [
        "a-12mp.jpg",
        "b-50mp.jpg",
        "c-screenshot.png",
        "d-12mp.webp",
    ] {
        assert_eq!(by_key(name).status, ResultStatus::Succeeded, "{name}");
    }
    let reason = |name: &str| {
        let r = by_key(name);
        assert_eq!(r.status, ResultStatus::Skipped, "{name}");
        r.error_message.clone().unwrap_or_default()
    };
    assert!(
        reason("e-bomb.png").contains("60000x60000"),
        "{}",
        reason("e-bomb.png")
    );
    assert!(
        reason("f-truncated.jpg").contains("truncated"),
        "{}",
        reason("f-truncated.jpg")
    );

    // Every manifest line within 600,000 bytes; the 12 MP photo (index 0) upright.
    let mut first_image = None;
    for part in intent.jobs.iter().flat_map(|j| j.parts.iter()) {
        let body = app.objects.get(&part.uri).await.expect("part");
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("json");
            assert!(
                line.len() <= 600_000,
                "{}: a line of {} bytes",
                v["recordId"],
                line.len()
            );
            if v["recordId"] == "REC00000000" {
                let data = v["modelInput"]["messages"][0]["content"][0]["source"]["data"]
                    .as_str()
                    .expect("inline image")
                    .to_owned();
                first_image = Some(data);
            }
        }
    }
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(first_image.expect("the 12 MP photo's record"))
        .expect("base64");
    let (w, h) = shared::domain::normalize::dimensions(&jpeg).expect("dims");
    assert!(h > w, "upright: {w}x{h}");
    assert!(h <= 1568, "long edge at most Claude's 1568 px: {w}x{h}");
    // The receipt is 40% of the upright frame's width: the crop is under half of it.
    assert!(w < 1176 / 2, "the receipt alone: {w}x{h}");
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&jpeg));
    d.read_info().expect("a JPEG");
    assert_eq!(
        d.info().expect("info").pixel_format,
        jpeg_decoder::PixelFormat::L8,
        "grey"
    );
    assert_eq!(shared::domain::normalize::orientation(&jpeg), 1);
}
