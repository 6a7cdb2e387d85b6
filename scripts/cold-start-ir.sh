#!/usr/bin/env bash
# Deterministic cold-start figure: callgrind counts the instructions (Ir) a release Lambda
# binary executes from exec until its first Runtime API call, refused here so the process ends
# right after init. Repeatable to ~0.01% whatever else the machine does, unlike wall-clock ms.
#   scripts/cold-start-ir.sh target/release/intake
set -euo pipefail
bin=$1
env -i AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 AWS_LAMBDA_FUNCTION_NAME=bench AWS_LAMBDA_FUNCTION_VERSION='$LATEST' \
 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_LOG_STREAM_NAME=bench AWS_LAMBDA_LOG_GROUP_NAME=bench AWS_LAMBDA_LOG_LEVEL=ERROR \
 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing INTENTS_TABLE=intents RESULTS_TABLE=results \
 UPLOADS_TABLE=uploads EVENT_BUS_NAME=bus UPLOADS_BUCKET=bench-uploads MANIFESTS_BUCKET=bench-manifests OUTPUTS_BUCKET=bench-outputs \
 BEDROCK_ROLE_ARN=arn:aws:iam::123456789012:role/bedrock ALLOWED_MODEL_IDS=us.anthropic.claude-haiku-4-5-20251001-v1:0 \
 API_BASE_URL=https://api.example.com \
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 | grep -o "Collected : [0-9]*" | grep -o "[0-9]*"
