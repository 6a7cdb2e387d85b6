//! The docs document what the code reads: every environment variable of every function is in
//! `docs/operations.md`, every event in `docs/architecture.md`; the README stays a front door.

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn when_reading_the_operations_page_should_find_every_environment_variable() {
    let page = doc("docs/operations.md");
    for (name, _, _) in shared::config::ENV_VARS {
        assert!(
            page.contains(&format!("| `{name}` |")),
            "docs/operations.md's table lacks {name}"
        );
    }
}

#[test]
fn when_reading_the_architecture_page_should_find_every_event() {
    let page = doc("docs/architecture.md");
    for kind in shared::domain::events::EventKind::ALL {
        assert!(
            page.contains(&format!("`{}`", kind.detail_type())),
            "docs/architecture.md lacks {kind}"
        );
    }
}

#[test]
fn when_reading_the_readme_should_find_a_front_door_that_links_every_page() {
    let readme = doc("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 200, "README.md is {lines} lines; at most 200");
    for page in [
        "architecture",
        "idempotency",
        "operations",
        "performance",
        "api",
    ] {
        let link = format!("docs/{page}.md");
        assert!(readme.contains(&link), "README does not link {link}");
        assert!(!doc(&link).trim().is_empty(), "{link} is empty");
    }
}
