//! S3 on the local disk: `{root}/{bucket}/{key}`. Writes go to a temporary file that is
//! renamed into place, so a reader never sees half an object (S3 PUTs are atomic too).

use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, ObjectKey};
use crate::ports::{ErrorKind, ObjectStore, ObjectWriter, PortError};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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

/// A file written beside its final name and renamed into place on `finish`.
struct FsWriter {
    file: tokio::fs::File,
    tmp: PathBuf,
    path: PathBuf,
    written: u64,
}

#[async_trait]
impl ObjectWriter for FsWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), PortError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| io_err("write", &self.tmp, e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, PortError> {
        self.file
            .flush()
            .await
            .map_err(|e| io_err("flush", &self.tmp, e))?;
        tokio::fs::rename(&self.tmp, &self.path)
            .await
            .map_err(|e| io_err("rename", &self.path, e))?;
        Ok(self.written)
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

impl FsObjectStore {
    /// A hidden temporary file in the object's folder (listing skips it).
    async fn temp_for(&self, uri: &S3Uri) -> Result<(PathBuf, PathBuf), PortError> {
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
        Ok((tmp, path))
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
        let (tmp, path) = self.temp_for(uri).await?;
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

    async fn lines(&self, uri: &S3Uri) -> Result<crate::ports::LineStream, PortError> {
        let path = self.path_of(uri)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_err("open", &path, e))?;
        Ok(crate::ports::line_stream(file, uri.to_string()))
    }

    async fn head(&self, uri: &S3Uri, n: usize) -> Result<(Vec<u8>, u64), PortError> {
        let path = self.path_of(uri)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_err("open", &path, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| io_err("stat", &path, e))?
            .len();
        let mut buf = Vec::with_capacity(n.min(size as usize));
        file.take(n as u64)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| io_err("read", &path, e))?;
        Ok((buf, size))
    }

    async fn copy(&self, from: &S3Uri, to: &S3Uri) -> Result<(), PortError> {
        let src = self.path_of(from)?;
        let (tmp, path) = self.temp_for(to).await?;
        tokio::fs::copy(&src, &tmp)
            .await
            .map_err(|e| io_err("copy", &src, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_err("rename", &path, e))
    }

    async fn writer(&self, uri: &S3Uri) -> Result<Box<dyn ObjectWriter>, PortError> {
        let (tmp, path) = self.temp_for(uri).await?;
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_err("create", &tmp, e))?;
        Ok(Box::new(FsWriter {
            file,
            tmp,
            path,
            written: 0,
        }))
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
    async fn when_reading_lines_should_stream_each_one_including_long_and_unterminated() {
        use futures::StreamExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsObjectStore::new(dir.path());
        let uri = S3Uri::parse("s3://bucket/p.jsonl").expect("valid");
        let long = "x".repeat(3 * 1024 * 1024); // longer than the reader's buffer
        let mut w = store.writer(&uri).await.expect("writer");
        w.write(format!("a\n{long}\n\nlast").as_bytes())
            .await
            .expect("write");
        w.finish().await.expect("finish");
        let lines: Vec<String> = store
            .lines(&uri)
            .await
            .expect("lines")
            .map(|l| l.expect("line"))
            .collect()
            .await;
        assert_eq!(
            lines,
            vec!["a".to_string(), long, String::new(), "last".into()]
        );
        let missing = store
            .lines(&S3Uri::parse("s3://bucket/nope").expect("valid"))
            .await;
        assert_eq!(missing.err().expect("missing").kind, ErrorKind::NotFound);
    }

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
