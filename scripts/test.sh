#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, handler and end-to-end tests on the
# embedded backend). Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets
