//! A local data dir (the embedded backend's, and `serve`'s signing key): private to its owner
//! when this program makes it (0700), on a case-sensitive disk. Everything inside (`state.db`,
//! `s3/`, `jwt.key`) is then unreadable to other local users whatever its own mode, and
//! `uploads/Alice/` and `uploads/alice/` stay two folders. A directory that exists already keeps
//! its mode (it may be shared, as `/tmp` is); one that group or others can write is refused,
//! since another user could swap the files in it.

use std::path::Path;

/// Makes `dir` private to its owner if this call creates it; refuses an existing `dir` that
/// group or others can write, leaving its mode as it was.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return refuse_shared(dir);
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// An error naming `dir` if group or others may write to it.
fn refuse_shared(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "data dir {} is writable by group or others (mode {:o}): choose a directory of your own (a new one is made private), or remove those write bits",
                    dir.display(),
                    mode & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// An error unless `dir`'s filesystem tells `A` from `a` (S3 keys are case-sensitive; the
/// filesystem object store keeps a key as a path).
pub fn require_case_sensitive(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".case-probe-{}-A", std::process::id()));
    std::fs::write(&probe, b"")?;
    let folded = dir.join(format!(".case-probe-{}-a", std::process::id()));
    let insensitive = folded.exists();
    std::fs::remove_file(&probe)?;
    if insensitive {
        return Err(std::io::Error::other(format!(
            "{} is on a case-insensitive filesystem: object keys that differ only by case (uploads/Alice/, uploads/alice/) would be one file; use a case-sensitive data dir",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_made_should_be_private_and_case_sensitive() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("data").join("nested");
        private_dir(&dir).expect("private");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "a dir this program makes is private");
        }
        require_case_sensitive(&dir).expect("this test disk tells A from a");
        assert_eq!(
            std::fs::read_dir(&dir).expect("ls").count(),
            0,
            "the probe is gone"
        );
    }

    #[cfg(unix)]
    #[test]
    fn when_an_existing_dir_is_shared_should_refuse_it_and_leave_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().expect("tmp");
        let mode_of = |d: &Path| std::fs::metadata(d).expect("meta").permissions().mode() & 0o7777;
        let shared = root.path().join("tmp-like");
        std::fs::create_dir(&shared).expect("dir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let err = private_dir(&shared).expect_err("refused");
        assert!(err.to_string().contains("tmp-like"), "{err}");
        assert_eq!(mode_of(&shared), 0o1777, "its mode is left as it was");
        // An existing dir of the user's own keeps its mode too.
        let own = root.path().join("own");
        std::fs::create_dir(&own).expect("dir");
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&own).expect("accepted");
        assert_eq!(mode_of(&own), 0o755);
    }
}
