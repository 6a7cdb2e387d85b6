//! S3 adapter for the object store: get, put (multipart above a threshold, so large manifest
//! parts stream up in pieces), and paginated listing.

use super::classify;
use crate::domain::bedrock::S3Uri;
use crate::domain::ids::{BucketName, ObjectKey};
use crate::ports::{ErrorKind, ObjectStore, PortError};
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

    async fn put_multipart(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(uri.bucket.as_str())
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", e))?;
        let upload_id = created.upload_id.ok_or_else(|| {
            PortError::new(
                ErrorKind::Unexpected,
                "CreateMultipartUpload returned no upload id",
            )
        })?;
        let result = async {
            let mut parts = Vec::new();
            for (i, chunk) in bytes.chunks(PART_SIZE).enumerate() {
                let number = i as i32 + 1;
                let out = self
                    .client
                    .upload_part()
                    .bucket(uri.bucket.as_str())
                    .key(&uri.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| classify("UploadPart", e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .build(),
                );
            }
            self.client
                .complete_multipart_upload()
                .bucket(uri.bucket.as_str())
                .key(&uri.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("CompleteMultipartUpload", e))?;
            Ok::<(), PortError>(())
        }
        .await;
        if result.is_err() {
            // Do not leave billed, invisible parts behind.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(uri.bucket.as_str())
                .key(&uri.key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, uri: &S3Uri, bytes: Vec<u8>) -> Result<(), PortError> {
        if bytes.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(uri, bytes).await;
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
