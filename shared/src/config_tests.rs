use super::*;

pub fn full_env() -> HashMap<String, String> {
    [
        (INTENTS_TABLE, "intents"),
        (RESULTS_TABLE, "results"),
        (UPLOADS_TABLE, "uploads"),
        (EVENT_BUS_NAME, "bus"),
        (UPLOADS_BUCKET, "up-bucket"),
        (MANIFESTS_BUCKET, "man-bucket"),
        (OUTPUTS_BUCKET, "out-bucket"),
        (BEDROCK_ROLE_ARN, "arn:aws:iam::123456789012:role/bedrock"),
        (
            ALLOWED_MODEL_IDS,
            "us.anthropic.claude-haiku-4-5-20251001-v1:0, amazon.nova-lite-v1:0",
        ),
        (API_BASE_URL, "https://api.example.com"),
        (MIN_RECORDS_PER_JOB, "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn when_env_is_complete_should_build_settings_with_defaults() {
    let c = FunctionConfig::from_map(&full_env()).expect("valid");
    assert_eq!(c.settings.allowed_models.len(), 2);
    assert_eq!(c.settings.quotas.min_records_per_job, 1000);
    assert_eq!(c.settings.quotas.max_records_per_job, 50_000);
    assert_eq!(c.settings.job_timeout_hours, 24);
}

#[test]
fn when_a_variable_is_missing_or_bad_should_name_it() {
    for (var, value) in [
        (INTENTS_TABLE, ""),
        (UPLOADS_BUCKET, "Bad_Bucket"),
        (MIN_RECORDS_PER_JOB, "lots"),
        (JOB_TIMEOUT_HOURS, "200"),
        (BEDROCK_ROLE_ARN, "not-an-arn"),
        (ALLOWED_MODEL_IDS, " , "),
    ] {
        let mut env = full_env();
        env.insert(var.to_owned(), value.to_owned());
        let err = FunctionConfig::from_map(&env).expect_err(var);
        assert_eq!(err.var, var);
        assert!(err.to_string().contains(var));
    }
}

#[test]
fn when_listing_variables_should_cover_each_name_once() {
    let names: std::collections::HashSet<_> = ENV_VARS.iter().map(|v| v.0).collect();
    assert_eq!(names.len(), ENV_VARS.len());
}
