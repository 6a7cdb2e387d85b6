//! S3 adapter for the object store: get, put (multipart above a threshold, so large manifest
//! parts stream up in pieces), and paginated listing.

use super::classify;
use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, ObjectKey};
use crate::ports::{ErrorKind, ObjectStore, ObjectWriter, PortError};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

/// Bodies above this go up as multipart uploads.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Part size (S3's minimum is 5 MiB for all but the last part).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
}

impl S3ObjectStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// A streaming upload: bytes are buffered up to one part (8 MiB), then sent as multipart
/// parts; a small object is a single PutObject on `finish`. Memory stays at one part whatever
/// the object's size.
struct S3Writer {
    client: Client,
    uri: S3Uri,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
}

impl S3Writer {
    async fn send_part(&mut self, chunk: Vec<u8>) -> Result<(), PortError> {
        if self.upload_id.is_none() {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(self.uri.bucket.as_str())
                .key(&self.uri.key)
                .send()
                .await
                .map_err(|e| classify("CreateMultipartUpload", e))?;
            self.upload_id = Some(created.upload_id.ok_or_else(|| {
                PortError::new(
                    ErrorKind::Unexpected,
                    "CreateMultipartUpload returned no upload id",
                )
            })?);
        }
        let number = self.parts.len() as i32 + 1;
        let out = self
            .client
            .upload_part()
            .bucket(self.uri.bucket.as_str())
            .key(&self.uri.key)
            .upload_id(self.upload_id.as_deref().unwrap_or_default())
            .part_number(number)
            .body(ByteStream::from(chunk))
            .send()
            .await
            .map_err(|e| classify("UploadPart", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    async fn finish_inner(&mut self) -> Result<(), PortError> {
        let rest = std::mem::take(&mut self.buf);
        if self.upload_id.is_none() {
            self.client
                .put_object()
                .bucket(self.uri.bucket.as_str())
                .key(&self.uri.key)
                .body(ByteStream::from(rest))
                .send()
                .await
                .map_err(|e| classify("PutObject", e))?;
            return Ok(());
        }
        if !rest.is_empty() {
            self.send_part(rest).await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(self.uri.bucket.as_str())
            .key(&self.uri.key)
            .upload_id(self.upload_id.as_deref().unwrap_or_default())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn abort_inner(&self) {
        if let Some(id) = &self.upload_id {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(self.uri.bucket.as_str())
                .key(&self.uri.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), PortError> {
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        while self.buf.len() >= PART_SIZE {
            let rest = self.buf.split_off(PART_SIZE);
            let chunk = std::mem::replace(&mut self.buf, rest);
            if let Err(e) = self.send_part(chunk).await {
                self.abort_inner().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, PortError> {
        match self.finish_inner().await {
            Ok(()) => Ok(self.written),
            Err(e) => {
                self.abort_inner().await;
                Err(e)
            }
        }
    }

    async fn abort(self: Box<Self>) {
        self.abort_inner().await;
    }
}

/// `bucket/key` for CopyObject's `x-amz-copy-source`, the key percent-encoded (slashes kept).
fn copy_source(uri: &S3Uri) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "{}/{}",
        uri.bucket,
        percent_encoding::utf8_percent_encode(&uri.key, KEEP)
    )
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn lines(&self, uri: &S3Uri) -> Result<crate::ports::LineStream, PortError> {
        let out = self
            .client
            .get_object()
            .bucket(uri.bucket.as_str())
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| classify("GetObject", e))?;
        Ok(crate::ports::line_stream(
            out.body.into_async_read(),
            uri.to_string(),
        ))
    }

    async fn head(&self, uri: &S3Uri, n: usize) -> Result<(Vec<u8>, u64), PortError> {
        let out = self
            .client
            .get_object()
            .bucket(uri.bucket.as_str())
            .key(&uri.key)
            .range(format!("bytes=0-{}", n.saturating_sub(1)))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            // An empty object has no byte 0.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok((Vec::new(), 0))
            }
            Err(e) => return Err(classify("GetObject", e)),
        };
        // `Content-Range: bytes 0-99/12345`; a whole-object answer has none.
        let total = out
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok());
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        let data = out.body.collect().await.map_err(|e| {
            PortError::with_source(ErrorKind::Transient, format!("reading {uri}"), e)
        })?;
        let mut bytes = data.into_bytes().to_vec();
        bytes.truncate(n);
        Ok((bytes, total.unwrap_or(length)))
    }

    async fn copy(&self, from: &S3Uri, to: &S3Uri) -> Result<(), PortError> {
        self.client
            .copy_object()
            .copy_source(copy_source(from))
            // The copy carries no tags: copying them would need s3:GetObjectTagging on the
            // uploads bucket, and Bedrock needs none.
            .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
            .bucket(to.bucket.as_str())
            .key(&to.key)
            .send()
            .await
            .map_err(|e| classify("CopyObject", e))?;
        Ok(())
    }

    async fn writer(&self, uri: &S3Uri) -> Result<Box<dyn ObjectWriter>, PortError> {
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            uri: uri.clone(),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
        }))
    }

    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError> {
        if bytes.len() > MULTIPART_THRESHOLD {
            // The streaming writer's multipart path: 8 MiB parts, aborted on failure.
            let mut w = self.writer(uri).await?;
            w.write(&bytes).await?;
            w.finish().await?;
            return Ok(());
        }
        self.client
            .put_object()
            .bucket(uri.bucket.as_str())
            .key(&uri.key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| classify("PutObject", e))?;
        Ok(())
    }

    async fn get(&self, uri: &S3Uri) -> Result<Vec<u8>, PortError> {
        let out = self
            .client
            .get_object()
            .bucket(uri.bucket.as_str())
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| classify("GetObject", e))?;
        let data = out.body.collect().await.map_err(|e| {
            PortError::with_source(ErrorKind::Transient, format!("reading {uri}"), e)
        })?;
        Ok(data.into_bytes().to_vec())
    }

    async fn list(&self, bucket: &BucketName, prefix: &str) -> Result<Vec<ObjectKey>, PortError> {
        self.list_range(bucket, prefix, None, None).await
    }

    async fn list_range(
        &self,
        bucket: &BucketName,
        prefix: &str,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Result<Vec<ObjectKey>, PortError> {
        // S3 lists in UTF-8 byte order, the order `str` comparison uses.
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        'pages: while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListObjectsV2", e))?;
            for obj in page.contents() {
                let Some(raw) = obj.key() else { continue };
                if through.is_some_and(|t| raw > t) {
                    break 'pages; // the next shard's
                }
                if let Ok(key) = ObjectKey::parse(raw) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}
