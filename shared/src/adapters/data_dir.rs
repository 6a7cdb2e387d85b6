//! A local data dir (the embedded backend's, and `serve`'s signing key): private to its owner
//! (0700), on a case-sensitive disk. Everything inside (`state.db`, `s3/`, `jwt.key`) is then unreadable to other local users
//! whatever its own mode, and `uploads/Alice/` and `uploads/alice/` stay two folders.

use std::path::Path;

/// Makes `dir` (and its parents) and keeps it to its owner.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
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
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).expect("dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            private_dir(&dir).expect("private");
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "an existing dir is tightened too");
        }
        require_case_sensitive(&dir).expect("this test disk tells A from a");
        assert_eq!(
            std::fs::read_dir(&dir).expect("ls").count(),
            0,
            "the probe is gone"
        );
    }
}
