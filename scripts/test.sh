#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, handler, embedded end-to-end, and
# the AWS-edge tests through the real SDK against moto server and the Bedrock emulator).
# Installs moto (pinned) into .venv, starts it on 127.0.0.1 on a free port, stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/local-aws.sh start)"
trap 'scripts/local-aws.sh stop' EXIT
export BO_AWS_ENDPOINT="$MOTO_ENDPOINT"
export BO_REQUIRE_AWS_TESTS=1

# Benches are built by clippy --all-targets in CI, and run on purpose (see README), not here.
cargo test --workspace --lib --bins --tests
