use super::*;

#[test]
fn when_estimating_cost_should_price_batch_at_the_discount() {
    let s = Settings::local("test");
    let haiku = ModelId::parse("anthropic.claude-haiku-4-5-20251001-v1:0").expect("valid");
    let c = s.estimate_cost(&haiku, 1000).expect("priced");
    // Economy: 1000 x (846 x 1.0 + 300 x 5.0) / 1e6 = 2.346
    assert!((c.on_demand_usd - 2.346).abs() < 1e-9, "{c:?}");
    assert!((c.batch_usd - 1.173).abs() < 1e-9, "{c:?}");
    let whole = Settings {
        estimate_input_tokens_per_image: input_tokens_per_image(
            crate::domain::normalize::Policy::Whole,
        ),
        ..Settings::local("test")
    };
    // Whole: 1000 x (1600 x 1.0 + 300 x 5.0) / 1e6 = 3.1
    let w = whole.estimate_cost(&haiku, 1000).expect("priced");
    assert!((w.on_demand_usd - 3.1).abs() < 1e-9, "{w:?}");
    for profile in [
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0",
    ] {
        let profile = ModelId::parse(profile).expect("ok");
        assert_eq!(s.estimate_cost(&profile, 1000), Some(c), "{profile}");
    }
    let unpriced = ModelId::parse("anthropic.claude-9-v1:0").expect("valid");
    assert_eq!(s.estimate_cost(&unpriced, 1), None);
}

#[test]
fn when_a_model_has_quotas_of_its_own_should_take_them_over_the_global_ones() {
    let mut s = Settings::local("test");
    s.quotas.min_records_per_job = 7;
    let haiku = ModelId::parse("us.anthropic.claude-haiku-4-5-20251001-v1:0").expect("id");
    let pro = ModelId::parse("us.amazon.nova-pro-v1:0").expect("id");
    assert_eq!(s.quotas_for(&haiku), s.quotas, "no catalog difference");
    // Nova Pro V1's job size is 100 GB in Service Quotas; its other quotas are global.
    assert_eq!(s.quotas_for(&pro).max_job_bytes, 100 * GB);
    assert_eq!(s.quotas_for(&pro).min_records_per_job, 7);
    s.model_quotas.insert(
        "anthropic.claude-haiku-4-5-20251001-v1:0".into(),
        QuotaOverrides {
            min_records_per_job: Some(1_000),
            ..Default::default()
        },
    );
    assert_eq!(
        s.quotas_for(&haiku).min_records_per_job,
        1_000,
        "by foundation id"
    );
    assert_eq!(s.pool_threshold(&haiku), 10_000);
    s.model_quotas.insert(
        haiku.to_string(),
        QuotaOverrides {
            max_concurrent_jobs: Some(2),
            ..Default::default()
        },
    );
    let q = s.quotas_for(&haiku);
    assert_eq!(
        (q.min_records_per_job, q.max_concurrent_jobs),
        (1_000, 2),
        "id over base"
    );
}

#[test]
fn when_packing_bytes_should_read_gb_as_decimal_and_keep_a_margin() {
    let q = Quotas::default();
    assert_eq!(
        (q.max_file_bytes, q.max_job_bytes),
        (1_000_000_000, 5_000_000_000)
    );
    assert_eq!(q.file_bytes_budget(), 990_000_000);
    assert_eq!(q.job_bytes_budget(), 4_950_000_000);
}

#[test]
fn when_bedrock_says_not_now_again_should_back_off_doubling_to_an_hour() {
    let s = Settings::local("test");
    let secs: Vec<i64> = [1, 2, 3, 10, 40]
        .iter()
        .map(|n| s.create_backoff(*n).num_seconds())
        .collect();
    assert_eq!(secs, vec![60, 120, 240, 3600, 3600]);
}

#[test]
fn when_estimating_should_grow_with_images() {
    let s = Settings::local("test");
    assert!(s.estimated_duration_secs(100) > s.estimated_duration_secs(1));
}
