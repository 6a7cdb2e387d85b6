//! The README documents what the code reads: every environment variable of every function.

#[test]
fn when_reading_the_readme_should_find_every_environment_variable() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for (name, _, _) in shared::config::ENV_VARS {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README's table lacks {name}"
        );
    }
}

#[test]
fn when_reading_the_readme_should_find_every_event() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for kind in shared::domain::events::EventKind::ALL {
        assert!(
            readme.contains(&format!("`{}`", kind.detail_type())),
            "README lacks {kind}"
        );
    }
}
