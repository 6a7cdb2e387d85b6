//! S3 on the local disk: `{root}/{bucket}/{key}`. Writes go to a temporary file that is
//! renamed into place, so a reader never sees half an object (S3 PUTs are atomic too).

use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, ObjectKey};
use crate::ports::{ErrorKind, ObjectStore, PortError};
use async_trait::async_trait;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

impl FsObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file behind an object. Keys are checked so none can leave its bucket's folder.
    pub fn path_of(&self, uri: &S3Uri) -> Result<PathBuf, PortError> {
        let key = ObjectKey::parse(&uri.key).map_err(|e| {
            PortError::new(
                ErrorKind::Validation,
                format!("bad object key {:?}: {e}", uri.key),
            )
        })?;
        Ok(self.root.join(uri.bucket.as_str()).join(key.as_str()))
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> PortError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Transient
    };
    PortError::with_source(kind, format!("{what} {}", path.display()), e)
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError> {
        let path = self.path_of(uri)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err("create", &dir, e))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            uri.key.rsplit('/').next().unwrap_or("obj"),
            uuid::Uuid::new_v4()
        ));
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| io_err("write", &tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_err("rename", &path, e))
    }

    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, PortError> {
        let path = self.path_of(uri)?;
        tokio::fs::read(&path)
            .await
            .map_err(|e| io_err("read", &path, e))
    }

    async fn list(&self, bucket: &BucketName, prefix: &str) -> Result<Vec<ObjectKey>, PortError> {
        let base = self.root.join(bucket.as_str());
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir, e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| io_err("list", &dir, e))?
            {
                let path = entry.path();
                let file_type = entry
                    .file_type()
                    .await
                    .map_err(|e| io_err("stat", &path, e))?;
                if file_type.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(&base) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                if key.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
                    continue; // an in-flight temporary file
                }
                if key.starts_with(prefix) {
                    if let Ok(k) = ObjectKey::parse(&key) {
                        out.push(k);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_range(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<Vec<ObjectKey>, PortError> {
        let mut keys = self.list(bucket, prefix).await?;
        keys.retain(|k| {
            after.is_none_or(|a| k.as_str() > a) && through.is_none_or(|t| k.as_str() <= t)
        });
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn when_object_is_put_should_get_and_list_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjectStore::new(dir.path());
        let bucket = BucketName::parse("bucket").expect("valid");
        let uri = S3Uri::parse("s3://bucket/a/b/c.txt").expect("valid");
        store.put(&uri, b"hi".to_vec()).await.expect("put");
        assert_eq!(store.get(&uri).await.expect("get"), b"hi");
        let keys = store.list(&bucket, "a/").await.expect("list");
        assert_eq!(
            keys.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["a/b/c.txt"]
        );
        assert!(store.list(&bucket, "z/").await.expect("list").is_empty());
        let missing = store
            .get(&S3Uri::parse("s3://bucket/nope").expect("valid"))
            .await;
        assert_eq!(missing.expect_err("missing").kind, ErrorKind::NotFound);
        let escape = store
            .put(&S3Uri::parse("s3://bucket/../x").expect("valid"), vec![])
            .await;
        assert_eq!(escape.expect_err("escape").kind, ErrorKind::Validation);
    }
}
