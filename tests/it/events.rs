//! Every sample event in `events/` parses as the type its function receives (what
//! `cargo lambda invoke --data-file` sends), and carries what its handler needs.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::sqs::SqsEvent;
use intake::IntakeEvent;
use shared::domain::bedrock::JobStateChange;
use shared::domain::events::Envelope;
use std::path::PathBuf;

fn load(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON")
}

#[test]
fn when_listing_events_should_find_one_for_every_entry_point() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "eventbridge-batch-requested.json",
            "eventbridge-bedrock-state-change.json",
            "eventbridge-s3-object-created.json",
            "intake-direct.json",
            "intake-http-api-v2.json",
            "intake-rest-v1.json",
            "schedule-nightly-run.json",
            "sqs-batch-requested.json",
            "sqs-bedrock-state-change.json",
            "sqs-manifest-ready.json",
        ]
    );
}

#[test]
fn when_intake_events_are_parsed_should_be_told_apart_by_door() {
    let v2: ApiGatewayV2httpRequest =
        serde_json::from_value(load("intake-http-api-v2.json")).expect("v2");
    assert_eq!(
        v2.request_context
            .authorizer
            .and_then(|a| a.jwt)
            .map(|j| j.claims["sub"].clone())
            .as_deref(),
        Some("user-123")
    );
    let v1: ApiGatewayProxyRequest =
        serde_json::from_value(load("intake-rest-v1.json")).expect("v1");
    assert_eq!(
        v1.request_context.authorizer.fields["claims"]["sub"],
        "user-123"
    );
    // The HTTP Lambda's runtime types each API event as its door.
    use lambda_http::request::LambdaRequest;
    assert!(matches!(
        serde_json::from_value(load("intake-http-api-v2.json")),
        Ok(LambdaRequest::ApiGatewayV2(_))
    ));
    assert!(matches!(
        serde_json::from_value(load("intake-rest-v1.json")),
        Ok(LambdaRequest::ApiGatewayV1(_))
    ));
    assert!(matches!(
        IntakeEvent::from_value(load("intake-direct.json")),
        Ok(IntakeEvent::Direct(_))
    ));
    match IntakeEvent::from_value(load("eventbridge-s3-object-created.json")) {
        Ok(IntakeEvent::ObjectCreated {
            bucket, key, size, ..
        }) => {
            assert_eq!(bucket, "batch-orchestrator-local-uploads");
            assert_eq!(key, "uploads/user-123/2026-11-28/receipt-001.png");
            assert_eq!(size, 48213);
        }
        other => panic!("not an Object Created event: {other:?}"),
    }
    assert!(matches!(
        IntakeEvent::from_value(load("schedule-nightly-run.json")),
        Ok(IntakeEvent::Nightly(Some(d))) if d.to_string() == "2026-11-28"
    ));
    assert!(matches!(
        IntakeEvent::from_value(serde_json::json!({"nightlyRun": {}})),
        Ok(IntakeEvent::Nightly(None))
    ));
}

#[test]
fn when_sqs_events_are_parsed_should_carry_an_eventbridge_envelope_each() {
    for (file, source, detail_type) in [
        (
            "sqs-batch-requested.json",
            "batch-orchestrator",
            "BATCH_REQUESTED",
        ),
        (
            "sqs-manifest-ready.json",
            "batch-orchestrator",
            "BATCH_MANIFEST_READY",
        ),
        (
            "sqs-bedrock-state-change.json",
            "aws.bedrock",
            "Batch Inference Job State Change",
        ),
    ] {
        let event: SqsEvent = serde_json::from_value(load(file)).expect(file);
        assert_eq!(event.records.len(), 1, "{file}");
        let body = event.records[0].body.as_deref().expect("body");
        let envelope: Envelope = serde_json::from_str(body).expect(file);
        assert_eq!(
            (envelope.source.as_str(), envelope.detail_type.as_str()),
            (source, detail_type),
            "{file}"
        );
        if source == "batch-orchestrator" {
            let ours = envelope
                .domain_event()
                .expect("ours")
                .expect("valid detail");
            assert_eq!(
                ours.detail.job_id.as_str(),
                "bj-3ae489935892792f79a38850",
                "{file}"
            );
        }
    }
}

#[test]
fn when_bedrock_event_is_parsed_should_yield_arn_and_status() {
    let envelope: Envelope =
        serde_json::from_value(load("eventbridge-bedrock-state-change.json")).expect("envelope");
    let change: JobStateChange = serde_json::from_value(envelope.detail).expect("detail");
    assert_eq!(change.status, "Completed");
    assert!(change.batch_job_arn.ends_with("/abcd1234wxyz"));
    let ours: Envelope =
        serde_json::from_value(load("eventbridge-batch-requested.json")).expect("envelope");
    assert!(ours.domain_event().expect("ours").is_ok());
}
