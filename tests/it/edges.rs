//! Hardened edges on the embedded backend: inputs that used to crash a stage or exhaust its
//! memory end as a per-image reason instead, and nothing else is held up.

use crate::common::*;
use shared::domain::bedrock::S3Uri;
use shared::domain::ids::ObjectKey;
use shared::domain::results::ResultStatus;
use shared::domain::status::IntentStatus;

/// Puts a file of `len` bytes (sparse: no byte is written) at `key` in the uploads bucket.
fn sparse_upload(app: &TestApp, key: &str, len: u64) {
    let uri = S3Uri::object(
        &app.deps.settings.uploads_bucket,
        &ObjectKey::parse(key).expect("key"),
    );
    let path = app.objects.path_of(&uri).expect("path");
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(len).expect("sparse");
}

#[tokio::test]
async fn when_an_upload_is_2_gb_should_skip_it_by_its_size_and_finish_the_rest() {
    let app = app().await;
    let big = format!("uploads/{SAMPLE_USER}/2026-11-28/huge.jpg");
    sparse_upload(&app, &big, 2_000_000_000);
    let keys = [SAMPLE_KEYS[0], big.as_str()];
    let answer = app.intake(direct("huge", &keys)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    run(&app).await;
    let intent = intent_named(&app, "huge");
    assert_eq!(
        intent.status,
        IntentStatus::Completed,
        "{:?}",
        intent.failure_message
    );
    let rs = results(&app, &intent).await;
    let skipped = rs
        .iter()
        .find(|r| r.image_key.as_str() == big)
        .expect("its result");
    assert_eq!(skipped.status, ResultStatus::Skipped);
    let why = skipped.error_message.clone().unwrap_or_default();
    assert!(why.contains("2000000000 bytes"), "{why}");
    assert!(rs.iter().any(|r| r.status == ResultStatus::Succeeded));
}

#[tokio::test]
async fn when_a_stored_key_is_too_long_for_its_copy_should_skip_it_not_crash() {
    // Written before intake refused such keys (a direct S3 put, an old index entry): the
    // manifest builder must answer for it, not panic.
    let app = app().await;
    // 1,015 bytes in folders of 200 (a file name may have at most 255).
    let mut long = format!("uploads/{SAMPLE_USER}/2026-11-28");
    while long.len() < 1015 - 201 {
        long.push('/');
        long.push_str(&"r".repeat(200));
    }
    long.push('/');
    long.push_str(&"r".repeat(1015 - long.len()));
    assert_eq!(long.len(), 1015);
    let answer = app.intake(direct("long", &[long.as_str()])).await;
    assert_eq!(status(&answer), 400, "intake refuses it: {answer}");
    assert_eq!(body(&answer)["field"], "images[0]");
    sparse_upload(&app, &long, 10);
    let got = shared::app::normalized::get_or_make(
        &app.deps,
        &ObjectKey::parse(&long).expect("a valid S3 key"),
        &shared::domain::family::Claude,
    )
    .await
    .expect("an answer");
    match got {
        shared::app::normalized::NormalizedCopy::Skipped(why) => {
            assert!(why.contains("1003"), "{why}")
        }
        other => panic!("expected a skip, got {other:?}"),
    }
}

/// Issue 32, item 9, as a user runs it: `--data-dir` naming a directory others may write (as
/// /tmp is, mode 1777) is refused with its name, and its mode is left as it was.
#[cfg(unix)]
#[test]
fn when_the_data_dir_is_shared_should_refuse_it_by_name_and_leave_its_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().expect("tmp");
    let shared_dir = root.path().join("sticky");
    std::fs::create_dir(&shared_dir).expect("dir");
    std::fs::set_permissions(&shared_dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_batch-orchestrator"))
        .arg("--data-dir")
        .arg(&shared_dir)
        .args(["demo", "--images", "1"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sticky") && err.contains("writable by group or others"),
        "{err}"
    );
    let mode = std::fs::metadata(&shared_dir)
        .expect("meta")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o1777);
    assert_eq!(
        std::fs::read_dir(&shared_dir).expect("ls").count(),
        0,
        "nothing written"
    );
}
