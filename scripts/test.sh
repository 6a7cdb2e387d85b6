#!/usr/bin/env bash
# Runs every test of the project:
#  - the Rust workspace: unit, handler, embedded end-to-end, fault-injection, chaos, hostile
#    input, and the AWS-edge tests through the real SDK against moto server and the Bedrock
#    emulator (moto is installed pinned into .venv, started on 127.0.0.1 on a free port, and
#    stopped after);
#  - the operator page in Debian's headless Chromium (installed here when missing);
#  - what the model receives, read by Debian's Tesseract (installed here when missing);
#  - the HTTP API held to openapi.json by schemathesis against `serve` (scripts/api-fuzz.sh);
#  - the CDK app in infra/: assertion tests with cdk-nag, then a synth (no AWS account), and
#    cfn-lint and checkov on the synthesized template (scripts/lint-template.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/local-aws.sh start)"
trap 'scripts/local-aws.sh stop' EXIT
export BO_AWS_ENDPOINT="$MOTO_ENDPOINT"
export BO_REQUIRE_AWS_TESTS=1

# The OpenAPI document validates against the OpenAPI 3.1 specification (pinned validator).
.venv/bin/pip install --quiet --disable-pip-version-check "openapi-spec-validator==0.9.0"
.venv/bin/openapi-spec-validator openapi.json

# Debian's Chromium for the operator page's browser test (tests/it/ops_page.rs), installed when
# missing; BO_REQUIRE_BROWSER makes that test fail rather than skip without it.
if ! command -v chromium > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  else
    echo "chromium is missing: sudo apt-get install chromium (the operator page's browser test needs it)" >&2
  fi
fi
export BO_REQUIRE_BROWSER=1

# Debian's Tesseract for the legibility tests (tests/it/legibility.rs): the economy copy of a
# receipt photo must read as well as the whole photo. BO_REQUIRE_TESSERACT makes them fail
# rather than skip without it.
if ! command -v tesseract > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr > /dev/null
  else
    echo "tesseract is missing: sudo apt-get install tesseract-ocr (the legibility tests need it)" >&2
  fi
fi
export BO_REQUIRE_TESSERACT=1

# Benches are built by clippy --all-targets in CI, and run on purpose (see docs/performance.md), not here.
# Every feature: the AWS edge (`aws`) is tested through the real SDK against moto.
cargo test --workspace --all-features --lib --bins --tests

# The embedded-only build the README's demo command makes (no AWS SDK): its unit tests, then
# the demo itself, which fails unless its batch ends COMPLETED and (Tesseract standing in for
# the model, installed above) at least 10 of its 12 drawn totals are read back.
cargo test -p batch-orchestrator --lib --bins
demo_dir=$(mktemp -d)
cargo run --quiet -p batch-orchestrator -- --data-dir "$demo_dir" demo > "$demo_dir/demo.log"
grep -E "^(pipeline idle|Bedrock jobs created|read totals match|receipts checked)" "$demo_dir/demo.log"
matched=$(sed -nE 's/^read totals match the drawn ones: ([0-9]+) of 12$/\1/p' "$demo_dir/demo.log")
if [ -z "$matched" ] || [ "$matched" -lt 10 ]; then
    echo "the demo read ${matched:-no} totals of 12 right; at least 10 expected" >&2
    exit 1
fi
rm -rf "$demo_dir"

# The HTTP API against its OpenAPI document: schemathesis (pinned) against `serve`, --checks
# all, a fixed seed then a fresh one; both must find nothing.
scripts/api-fuzz.sh target/debug/batch-orchestrator

(
  cd infra
  npm ci --no-audit --no-fund --loglevel=error
  npm test
  npm run --silent synth > /dev/null
  echo "infra: cdk synth ok"
)
# The synthesized template, held by tools we did not write (pinned, offline).
scripts/lint-template.sh infra/cdk.out/BatchOrchestrator-dev.template.json
