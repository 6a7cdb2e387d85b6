//! Adapter tests with aws-smithy-mocks: the request each adapter sends (conditions, tokens,
//! names) and how each service error is classified. Errors are given as raw HTTP responses so
//! the SDK's own deserializers run, as they would against AWS.
// A test reads as one scenario, top to bottom: the function-length limit is for the code.
#![allow(clippy::too_many_lines)]

use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::Utc;
use shared::adapters::aws::bedrock::BedrockBatch;
use shared::adapters::aws::dynamodb::DynamoStore;
use shared::adapters::aws::eventbridge::EventBridgeBus;
use shared::adapters::aws::s3::{S3ObjectStore, MULTIPART_THRESHOLD};
use shared::adapters::aws::sqs::SqsQueues;
use shared::domain::bedrock::{CreateJobRequest, S3Uri};
use shared::domain::events::Envelope;
use shared::domain::ids::{BedrockJobArn, IntentId, ModelId, ObjectKey, TraceId, UserId};
use shared::domain::intent::{BatchIntent, ImageSelection, NewIntent};
use shared::domain::status::BedrockJobStatus;
use shared::ports::{
    BatchInference, Created, ErrorKind, EventBus, IntentStore, ObjectStore, ResultStore, Updated,
};

fn json_error(status: u16, code: &str, extra: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::json!({"__type": code, "message": format!("{code} (mocked)")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let mut resp = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body.to_string()),
    );
    resp.headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    resp
}

fn rest_json_error(status: u16, code: &'static str) -> HttpResponse {
    let mut resp = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(serde_json::json!({"message": format!("{code} (mocked)")}).to_string()),
    );
    resp.headers_mut().insert("x-amzn-errortype", code);
    resp.headers_mut()
        .insert("content-type", "application/json");
    resp
}

fn no_retries<B>(b: B) -> B {
    b
}

fn intent() -> BatchIntent {
    BatchIntent::new(
        NewIntent {
            intent_id: IntentId::parse("intent-1").expect("id"),
            client_intent_id: None,
            user_id: UserId::parse("user-1").expect("id"),
            selection: ImageSelection::Keys(vec![
                ObjectKey::parse("uploads/user-1/a.png").expect("key")
            ]),
            model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("id"),
            prompt_version: "receipt-v1".into(),
            trace_id: TraceId::parse("trace-1").expect("id"),
            deadline: None,
            webhook: None,
        },
        Utc::now(),
        30,
    )
}

fn arn() -> BedrockJobArn {
    BedrockJobArn::parse("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abcd1234wxyz")
        .expect("arn")
}

mod dynamodb {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
    use aws_sdk_dynamodb::Client;
    use shared::adapters::aws::dynamodb::intent_item;

    fn store(client: Client) -> DynamoStore {
        DynamoStore::new(client, "intents", "results")
    }

    #[tokio::test]
    async fn when_creating_should_condition_on_absence_and_ask_for_the_old_item() {
        let rule = mock!(Client::put_item)
            .match_requests(|r| {
                r.table_name() == Some("intents")
                    && r.condition_expression() == Some("attribute_not_exists(intentId)")
                    && r.return_values_on_condition_check_failure()
                        == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
                    && r.item().is_some_and(|i| {
                        i.get("intentId")
                            .and_then(|v| v.as_s().ok())
                            .map(String::as_str)
                            == Some("intent-1")
                            && i.contains_key("jobId")
                            && i.contains_key("expiresAt")
                            && i.get("outboxPending").is_some()
                            && i.get("version")
                                .and_then(|v| v.as_n().ok())
                                .map(String::as_str)
                                == Some("1")
                    })
            })
            .then_output(|| PutItemOutput::builder().build());
        let pointer = job_pointer_rule();
        let s = store(mock_client!(aws_sdk_dynamodb, [&pointer, &rule]));
        assert_eq!(s.create(&intent()).await.expect("created"), Created::New);
        assert_eq!(pointer.num_calls(), 1, "the jobId pointer is put first");
        assert_eq!(rule.num_calls(), 1);
    }

    /// The unconditional put of `job#{jobId}` -> intent-1 that precedes every create.
    fn job_pointer_rule() -> aws_smithy_mocks::Rule {
        let job = intent().job_id;
        mock!(Client::put_item)
            .match_requests(move |r| {
                r.condition_expression().is_none()
                    && r.item().is_some_and(|i| {
                        i.get("intentId").and_then(|v| v.as_s().ok()) == Some(&format!("job#{job}"))
                            && i.get("ownerIntentId")
                                .and_then(|v| v.as_s().ok())
                                .map(String::as_str)
                                == Some("intent-1")
                            && !i.contains_key("jobId")
                            && i.contains_key("expiresAt")
                    })
            })
            .then_output(|| PutItemOutput::builder().build())
    }

    #[tokio::test]
    async fn when_storing_results_should_give_each_an_expiry_like_its_intents() {
        use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
        let days = 7;
        let want = (Utc::now() + chrono::Duration::days(days)).timestamp();
        let rule = mock!(Client::batch_write_item)
            .match_requests(move |r| {
                r.request_items()
                    .and_then(|m| m.get("results"))
                    .is_some_and(|writes| {
                        !writes.is_empty()
                            && writes.iter().all(|w| {
                                w.put_request()
                                    .and_then(|p| p.item().get("expiresAt"))
                                    .and_then(|v| v.as_n().ok())
                                    .and_then(|n| n.parse::<i64>().ok())
                                    .is_some_and(|t| (t - want).abs() < 60)
                            })
                    })
            })
            .then_output(|| BatchWriteItemOutput::builder().build());
        let s = store(mock_client!(aws_sdk_dynamodb, [&rule])).with_results_ttl_days(days);
        let result = shared::domain::results::ImageResult::skipped(
            shared::domain::ids::RecordId::parse("r-1").expect("id"),
            0,
            ObjectKey::parse("uploads/u/2026-11-28/a.png").expect("key"),
            "not an image",
        );
        s.put_results(&IntentId::parse("intent-1").expect("id"), &[result])
            .await
            .expect("stored");
        assert_eq!(
            rule.num_calls(),
            1,
            "expiresAt within a minute of now + {days} days"
        );
    }

    #[tokio::test]
    async fn when_looking_up_a_job_id_should_read_its_pointer_consistently_not_the_index() {
        use aws_sdk_dynamodb::operation::query::QueryOutput;
        use aws_sdk_dynamodb::types::AttributeValue;
        let stored = intent();
        let item = intent_item(&stored).expect("item");
        let pointer_key = format!("job#{}", stored.job_id);
        let pointer = mock!(Client::get_item)
            .match_requests(move |r| {
                r.consistent_read() == Some(true)
                    && r.key()
                        .and_then(|k| k.get("intentId"))
                        .and_then(|v| v.as_s().ok())
                        == Some(&pointer_key)
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .item("ownerIntentId", AttributeValue::S("intent-1".into()))
                    .build()
            });
        let get = mock!(Client::get_item)
            .match_requests(|r| {
                r.consistent_read() == Some(true)
                    && r.key()
                        .and_then(|k| k.get("intentId"))
                        .and_then(|v| v.as_s().ok())
                        == Some(&"intent-1".to_string())
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(item.clone()))
                    .build()
            });
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let s = store(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&pointer, &get, &query]
        ));
        let found = s.get_by_job_id(&stored.job_id).await.expect("read");
        assert_eq!(found, Some(stored));
        assert_eq!(pointer.num_calls(), 1);
        assert_eq!(
            query.num_calls(),
            0,
            "the eventually consistent GSI is not read"
        );
    }

    #[tokio::test]
    async fn when_create_loses_should_return_the_old_item_without_a_second_read() {
        let old = intent();
        let item = intent_item(&old).expect("item");
        let item_json: serde_json::Map<String, serde_json::Value> = item
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => serde_json::json!({"S": s}),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => serde_json::json!({"N": n}),
                    _ => serde_json::Value::Null,
                };
                (k.clone(), value)
            })
            .collect();
        let put = mock!(Client::put_item).then_http_response(move || {
            json_error(
                400,
                "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                serde_json::json!({"Item": item_json.clone()}),
            )
        });
        let get = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let pointer = job_pointer_rule();
        let s = store(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&pointer, &put, &get]
        ));
        match s.create(&old).await.expect("answer") {
            Created::Existing(found) => assert_eq!(*found, old),
            other => panic!("expected Existing, got {other:?}"),
        }
        assert_eq!(get.num_calls(), 0, "ALL_OLD made a second read unnecessary");
    }

    #[tokio::test]
    async fn when_updating_should_condition_on_version_and_write_arn_pointers_atomically() {
        let mut next = intent();
        next.version = 8;
        let job = shared::domain::intent::BatchJob {
            job_no: 1,
            attempt: 1,
            job_name: "n".into(),
            client_token: "t".into(),
            input: S3Uri::parse("s3://bucket-a/in/").expect("uri"),
            output: S3Uri::parse("s3://bucket-a/out/").expect("uri"),
            parts: vec![],
            arn: Some(arn()),
            status: None,
            failure_message: None,
            summary: None,
            record_map: None,
            pad_records: 0,
            rerun_of: None,
            progress: None,
            expires_at: None,
            on_demand: false,
            created_at: None,
            started_at: None,
            deadline_stop_at: None,
        };
        next.jobs.push(job);
        let rule = mock!(Client::transact_write_items)
            .match_requests(|r| {
                let items = r.transact_items();
                let first = items.first().and_then(|i| i.put());
                let pointer = items.get(1).and_then(|i| i.put());
                items.len() == 2
                    && first.is_some_and(|p| {
                        p.condition_expression() == Some("version = :expected")
                            && p.expression_attribute_values()
                                .and_then(|v| v.get(":expected"))
                                .and_then(|v| v.as_n().ok())
                                .map(String::as_str)
                                == Some("7")
                    })
                    && pointer.is_some_and(|p| {
                        p.item()
                            .get("intentId")
                            .and_then(|v| v.as_s().ok())
                            .is_some_and(|k| k.starts_with("bedrock-job#arn:aws:bedrock"))
                            && p.item()
                                .get("ownerIntentId")
                                .and_then(|v| v.as_s().ok())
                                .map(String::as_str)
                                == Some("intent-1")
                    })
            })
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let s = store(mock_client!(aws_sdk_dynamodb, [&rule]));
        assert_eq!(s.update(&next, 7).await.expect("written"), Updated::Written);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn when_update_loses_the_version_race_should_return_what_is_stored() {
        let stored = intent();
        let item = intent_item(&stored).expect("item");
        let tx = mock!(Client::transact_write_items).then_http_response(|| {
            json_error(
                400,
                "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                serde_json::json!({"CancellationReasons": [{"Code": "ConditionalCheckFailed"}]}),
            )
        });
        let get = mock!(Client::get_item).then_output(move || {
            GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        });
        let s = store(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&tx, &get]
        ));
        match s.update(&stored, 1).await.expect("answer") {
            Updated::Stale(current) => assert_eq!(*current, stored),
            other => panic!("expected Stale, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn when_dynamodb_fails_should_classify_the_error() {
        for (code, status, kind) in [
            (
                "ProvisionedThroughputExceededException",
                400,
                ErrorKind::Throttled,
            ),
            ("ThrottlingException", 400, ErrorKind::Throttled),
            ("ValidationException", 400, ErrorKind::Validation),
            ("ResourceNotFoundException", 400, ErrorKind::NotFound),
            ("InternalServerError", 500, ErrorKind::Transient),
            ("AccessDeniedException", 400, ErrorKind::Forbidden),
        ] {
            let rule = mock!(Client::get_item).then_http_response(move || {
                json_error(
                    status,
                    &format!("com.amazonaws.dynamodb.v20120810#{code}"),
                    serde_json::json!({}),
                )
            });
            let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule], |c| {
                no_retries(c).retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            });
            let err = store(client)
                .get(&IntentId::parse("x").expect("id"))
                .await
                .expect_err(code);
            assert_eq!(err.kind, kind, "{code}: {err}");
            assert!(
                err.message.contains(code),
                "{code}: the message keeps the code: {err}"
            );
            assert_eq!(
                err.is_retryable(),
                matches!(kind, ErrorKind::Transient | ErrorKind::Throttled),
                "{code}"
            );
        }
    }
}

mod s3 {
    use super::*;
    use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
    use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::operation::upload_part::UploadPartOutput;
    use aws_sdk_s3::Client;

    fn xml_error(status: u16, code: &str) -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::from(format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>mocked</Message></Error>")),
        )
    }

    #[tokio::test]
    async fn when_getting_a_missing_object_should_be_not_found() {
        let rule = mock!(Client::get_object).then_http_response(|| xml_error(404, "NoSuchKey"));
        let s3 = S3ObjectStore::new(mock_client!(aws_sdk_s3, [&rule]));
        let err = s3
            .get(&S3Uri::parse("s3://bucket-a/k").expect("uri"))
            .await
            .expect_err("missing");
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn when_s3_asks_to_slow_down_should_be_retryable_as_throttling() {
        let rule = mock!(Client::put_object).then_http_response(|| xml_error(503, "SlowDown"));
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&rule], |c| {
            c.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        });
        let err = S3ObjectStore::new(client)
            .put(
                &S3Uri::parse("s3://bucket-a/k").expect("uri"),
                b"x".to_vec(),
            )
            .await
            .expect_err("503");
        // S3's SlowDown (503) asks the caller to slow down: retryable, as throttling.
        assert_eq!(err.kind, ErrorKind::Throttled);
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn when_body_is_small_should_put_once_and_when_large_should_upload_in_parts() {
        let small = mock!(Client::put_object)
            .match_requests(|r| r.bucket() == Some("bucket-a") && r.key() == Some("small"))
            .then_output(|| PutObjectOutput::builder().build());
        let create = mock!(Client::create_multipart_upload).then_output(|| {
            CreateMultipartUploadOutput::builder()
                .upload_id("up-1")
                .build()
        });
        let part = mock!(Client::upload_part)
            .match_requests(|r| r.upload_id() == Some("up-1"))
            .then_compute_output(|r| {
                UploadPartOutput::builder()
                    .e_tag(format!("etag-{}", r.part_number().unwrap_or(0)))
                    .build()
            });
        let complete = mock!(Client::complete_multipart_upload)
            .match_requests(|r| {
                r.multipart_upload().map(|m| {
                    m.parts()
                        .iter()
                        .map(|p| p.part_number().unwrap_or(0))
                        .collect::<Vec<_>>()
                }) == Some(vec![1, 2, 3])
            })
            .then_output(|| CompleteMultipartUploadOutput::builder().build());
        let s3 = S3ObjectStore::new(mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&small, &create, &part, &complete]
        ));
        s3.put(
            &S3Uri::parse("s3://bucket-a/small").expect("uri"),
            b"tiny".to_vec(),
        )
        .await
        .expect("small put");
        let big = vec![7u8; MULTIPART_THRESHOLD + 1];
        s3.put(&S3Uri::parse("s3://bucket-a/big").expect("uri"), big)
            .await
            .expect("multipart");
        assert_eq!(small.num_calls(), 1);
        assert_eq!(create.num_calls(), 1);
        assert_eq!(part.num_calls(), 3, "16 MiB + 1 byte in 8 MiB parts");
        assert_eq!(complete.num_calls(), 1);
    }
}

mod eventbridge {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::Client;

    fn envelopes(n: usize) -> Vec<Envelope> {
        (0..n)
            .map(|i| Envelope {
                version: "0".into(),
                id: format!("e{i}"),
                detail_type: "BATCH_REQUESTED".into(),
                source: "batch-orchestrator".into(),
                account: None,
                time: None,
                region: None,
                resources: vec![],
                detail: serde_json::json!({"n": i}),
            })
            .collect()
    }

    #[tokio::test]
    async fn when_publishing_many_events_should_send_at_most_ten_per_call_to_the_bus() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| {
                r.entries().len() <= 10
                    && r.entries().iter().all(|e| {
                        e.event_bus_name() == Some("bus-1")
                            && e.detail_type() == Some("BATCH_REQUESTED")
                    })
            })
            .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
        let bus = EventBridgeBus::new(
            mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]),
            "bus-1",
        );
        bus.publish(&envelopes(25)).await.expect("published");
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn when_some_entries_fail_with_http_200_should_be_an_error() {
        for (code, kind) in [
            ("ThrottlingException", ErrorKind::Transient),
            ("AccessDeniedException", ErrorKind::Unexpected),
        ] {
            let rule = mock!(Client::put_events).then_output(move || {
                PutEventsOutput::builder()
                    .failed_entry_count(1)
                    .entries(PutEventsResultEntry::builder().event_id("ok").build())
                    .entries(
                        PutEventsResultEntry::builder()
                            .error_code(code)
                            .error_message("mocked")
                            .build(),
                    )
                    .build()
            });
            let bus = EventBridgeBus::new(mock_client!(aws_sdk_eventbridge, [&rule]), "bus-1");
            let err = bus
                .publish(&envelopes(2))
                .await
                .expect_err("partial failure");
            assert_eq!(err.kind, kind, "{code}");
            assert!(err.message.contains("1 of 2"), "{err}");
        }
    }

    #[tokio::test]
    async fn when_an_event_is_over_256_kb_should_refuse_it_before_sending() {
        let rule = mock!(Client::put_events).then_output(|| PutEventsOutput::builder().build());
        let bus = EventBridgeBus::new(mock_client!(aws_sdk_eventbridge, [&rule]), "bus-1");
        let mut big = envelopes(1);
        big[0].detail = serde_json::json!({"blob": "x".repeat(300 * 1024)});
        let err = bus.publish(&big).await.expect_err("too big");
        assert_eq!(err.kind, ErrorKind::Validation);
        assert_eq!(rule.num_calls(), 0);
    }
}

mod sqs {
    use super::*;
    use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput;
    use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    use aws_sdk_sqs::types::Message;
    use aws_sdk_sqs::Client;

    fn msg(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body(format!("body-{id}"))
            .build()
    }

    #[tokio::test]
    async fn when_replaying_should_delete_only_what_was_sent() {
        let receive = mock!(Client::receive_message)
            .match_requests(|r| r.queue_url() == Some("dlq"))
            .sequence()
            .output(|| {
                ReceiveMessageOutput::builder()
                    .messages(msg("a"))
                    .messages(msg("b"))
                    .build()
            })
            .output(|| ReceiveMessageOutput::builder().build())
            .build();
        let send_ok = mock!(Client::send_message)
            .match_requests(|r| {
                r.queue_url() == Some("source") && r.message_body() == Some("body-a")
            })
            .then_output(|| SendMessageOutput::builder().message_id("new-a").build());
        let send_fail = mock!(Client::send_message)
            .match_requests(|r| r.message_body() == Some("body-b"))
            .then_http_response(|| {
                json_error(
                    400,
                    "com.amazonaws.sqs#InvalidMessageContents",
                    serde_json::json!({}),
                )
            });
        let delete = mock!(Client::delete_message_batch)
            .match_requests(|r| {
                r.queue_url() == Some("dlq")
                    && r.entries()
                        .iter()
                        .map(|e| e.receipt_handle())
                        .collect::<Vec<_>>()
                        == vec!["rh-a"]
            })
            .then_output(|| {
                DeleteMessageBatchOutput::builder()
                    .set_successful(Some(vec![]))
                    .set_failed(Some(vec![]))
                    .build()
                    .expect("output")
            });
        let client = mock_client!(
            aws_sdk_sqs,
            RuleMode::MatchAny,
            [&receive, &send_ok, &send_fail, &delete],
            |c| { c.retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled()) }
        );
        let report = SqsQueues::new(client)
            .replay_dlq("dlq", "source", 10, false)
            .await
            .expect("replay");
        assert_eq!(report.moved.len(), 1);
        assert_eq!(report.moved[0].message_id, "a");
        assert_eq!(report.failed, 1);
        assert_eq!(delete.num_calls(), 1, "b stays in the DLQ");
    }

    #[tokio::test]
    async fn when_dry_running_should_release_and_send_nothing() {
        let receive = mock!(Client::receive_message)
            .sequence()
            .output(|| ReceiveMessageOutput::builder().messages(msg("a")).build())
            .output(|| ReceiveMessageOutput::builder().messages(msg("a")).build())
            .build();
        let release = mock!(Client::change_message_visibility)
            .match_requests(|r| r.visibility_timeout() == Some(0))
            .then_output(|| ChangeMessageVisibilityOutput::builder().build());
        let send = mock!(Client::send_message).then_output(|| SendMessageOutput::builder().build());
        let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&receive, &release, &send]);
        let report = SqsQueues::new(client)
            .replay_dlq("dlq", "source", 10, true)
            .await
            .expect("dry run");
        assert_eq!(
            report.moved.len(),
            1,
            "seen once even though received twice"
        );
        assert_eq!(send.num_calls(), 0);
        assert_eq!(release.num_calls(), 2);
    }
}

mod bedrock {
    use super::*;
    use aws_sdk_bedrock::operation::create_model_invocation_job::CreateModelInvocationJobOutput;
    use aws_sdk_bedrock::Client;

    fn request() -> CreateJobRequest {
        CreateJobRequest {
            job_name: "bo-0123456789abcdef01234567-p1-a1".into(),
            client_request_token: "bo0123456789abcdef01234567p1a1".into(),
            role_arn: "arn:aws:iam::123456789012:role/bedrock".into(),
            model_id: ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("id"),
            input: S3Uri::parse("s3://manifests-bucket/manifests/bj-x/j001/").expect("uri"),
            output: S3Uri::parse("s3://outputs-bucket/outputs/bj-x/j001/").expect("uri"),
            timeout_hours: 24,
            tags: vec![("intentId".into(), "intent-1".into())],
        }
    }

    #[tokio::test]
    async fn when_creating_should_send_the_deterministic_token_name_and_config() {
        let rule = mock!(Client::create_model_invocation_job)
            .match_requests(|r| {
                use aws_sdk_bedrock::types::{ModelInvocationJobInputDataConfig as I, ModelInvocationJobOutputDataConfig as O};
                r.client_request_token() == Some("bo0123456789abcdef01234567p1a1")
                    && r.job_name() == Some("bo-0123456789abcdef01234567-p1-a1")
                    && r.role_arn() == Some("arn:aws:iam::123456789012:role/bedrock")
                    && r.timeout_duration_in_hours() == Some(24)
                    && matches!(r.input_data_config(), Some(I::S3InputDataConfig(c)) if c.s3_uri() == "s3://manifests-bucket/manifests/bj-x/j001/")
                    && matches!(r.output_data_config(), Some(O::S3OutputDataConfig(c)) if c.s3_uri() == "s3://outputs-bucket/outputs/bj-x/j001/")
                    && r.tags().iter().any(|t| t.key() == "intentId" && t.value() == "intent-1")
            })
            .then_output(|| CreateModelInvocationJobOutput::builder().job_arn(arn().as_str()).build().expect("output"));
        let bedrock = BedrockBatch::new(mock_client!(aws_sdk_bedrock, [&rule]));
        assert_eq!(
            bedrock.create_job(&request()).await.expect("created"),
            arn()
        );
    }

    #[tokio::test]
    async fn when_bedrock_refuses_should_tell_later_from_never() {
        for (code, status, kind, retryable) in [
            (
                "ServiceQuotaExceededException",
                400,
                ErrorKind::QuotaExceeded,
                true,
            ),
            ("ThrottlingException", 429, ErrorKind::Throttled, true),
            ("InternalServerException", 500, ErrorKind::Transient, true),
            ("ValidationException", 400, ErrorKind::Validation, false),
            ("ConflictException", 400, ErrorKind::Conflict, true),
            ("AccessDeniedException", 403, ErrorKind::Forbidden, false),
            ("ResourceNotFoundException", 404, ErrorKind::NotFound, false),
        ] {
            let rule = mock!(Client::create_model_invocation_job)
                .then_http_response(move || rest_json_error(status, code));
            let client = mock_client!(aws_sdk_bedrock, RuleMode::MatchAny, [&rule], |c| {
                c.retry_config(aws_sdk_bedrock::config::retry::RetryConfig::disabled())
            });
            let err = BedrockBatch::new(client)
                .create_job(&request())
                .await
                .expect_err(code);
            assert_eq!(err.kind, kind, "{code}: {err}");
            assert_eq!(err.is_retryable(), retryable, "{code}");
        }
    }

    #[tokio::test]
    async fn when_getting_a_job_should_map_status_and_message() {
        use aws_sdk_bedrock::operation::get_model_invocation_job::GetModelInvocationJobOutput;
        use aws_sdk_bedrock::types::{
            ModelInvocationJobInputDataConfig, ModelInvocationJobOutputDataConfig,
            ModelInvocationJobS3InputDataConfig, ModelInvocationJobS3OutputDataConfig,
            ModelInvocationJobStatus,
        };
        let rule = mock!(Client::get_model_invocation_job)
            .match_requests(|r| r.job_identifier() == Some(arn().as_str()))
            .then_output(|| {
                GetModelInvocationJobOutput::builder()
                    .job_arn(arn().as_str())
                    .job_name("bo-x")
                    .model_id("us.anthropic.claude-haiku-4-5-20251001-v1:0")
                    .role_arn("arn:aws:iam::123456789012:role/bedrock")
                    .status(ModelInvocationJobStatus::PartiallyCompleted)
                    .message("some records failed")
                    .submit_time(aws_sdk_bedrock::primitives::DateTime::from_secs(
                        1_795_835_400,
                    ))
                    .input_data_config(ModelInvocationJobInputDataConfig::S3InputDataConfig(
                        ModelInvocationJobS3InputDataConfig::builder()
                            .s3_uri("s3://in-bucket/x/")
                            .build()
                            .expect("in"),
                    ))
                    .output_data_config(ModelInvocationJobOutputDataConfig::S3OutputDataConfig(
                        ModelInvocationJobS3OutputDataConfig::builder()
                            .s3_uri("s3://out-bucket/y/")
                            .build()
                            .expect("out"),
                    ))
                    .build()
                    .expect("output")
            });
        let info = BedrockBatch::new(mock_client!(aws_sdk_bedrock, [&rule]))
            .get_job(&arn())
            .await
            .expect("job");
        assert_eq!(info.status, BedrockJobStatus::PartiallyCompleted);
        assert_eq!(info.failure_message.as_deref(), Some("some records failed"));
        assert_eq!(info.output.to_string(), "s3://out-bucket/y/");
        assert_eq!(info.submitted_at.timestamp(), 1_795_835_400);
    }
}
