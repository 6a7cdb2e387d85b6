//! The intake parser on arbitrary bodies: it must never panic, and whatever it accepts must
//! keep its promises (ids in grammar, keys under the caller's prefix, no duplicates).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::app::intake::{parse_request, Caller};
use shared::domain::ids::UserId;
use shared::domain::intent::{user_upload_prefix, ImageSelection};
use shared::domain::settings::Settings;
use std::sync::OnceLock;

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| Settings::local("fuzz"))
}

fuzz_target!(|data: &[u8]| {
    let user = UserId::parse("user-123").expect("valid");
    for caller in [Caller::User(user.clone()), Caller::Trusted] {
        if let Ok(intent) = parse_request(settings(), &caller, data, None) {
            if caller == Caller::User(user.clone()) {
                assert_eq!(intent.user_id, user, "claims decide the user");
            }
            if let ImageSelection::Keys(keys) = &intent.selection {
                let prefix = user_upload_prefix(&intent.user_id);
                assert!(!keys.is_empty() && keys.len() <= settings().max_images_per_intent);
                let mut seen = std::collections::HashSet::new();
                for k in keys {
                    assert!(k.as_str().starts_with(&prefix), "key outside the caller's prefix");
                    assert!(!k.as_str().split('/').any(|s| s == ".."), "traversal accepted");
                    assert!(seen.insert(k.as_str()), "duplicate accepted");
                    // Its normalized copy's key must fit S3's 1,024 bytes.
                    assert!(
                        k.as_str().len() <= shared::domain::uploads::MAX_UPLOAD_KEY_BYTES,
                        "a key too long for its normalized copy accepted"
                    );
                }
            }
            assert!(
                !shared::domain::intent::is_reserved_user(&intent.user_id),
                "a reserved identity accepted"
            );
        }
    }
});
