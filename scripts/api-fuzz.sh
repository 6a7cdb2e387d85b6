#!/usr/bin/env bash
# Holds the HTTP API to its OpenAPI document with schemathesis (pinned, in .venv-st), run
# against `batch-orchestrator serve` on 127.0.0.1 with `--checks all`: one run with a fixed
# seed (reproducible), then one short run with a fresh seed. Either run's failure fails this
# script. `serve` and its data dir are removed after.
#   scripts/api-fuzz.sh [path/to/batch-orchestrator]
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
VENV=".venv-st"
BIN="${1:-target/debug/batch-orchestrator}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

data_dir=$(mktemp -d)
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# --allow-local-webhooks: the document allows http:// receivers (a local one under test), and
# a drawn URL is never one this machine refuses for being inward; the network is closed anyway.
"$BIN" --data-dir "$data_dir" serve --port "$port" --allow-local-webhooks > "$data_dir/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "http://127.0.0.1:$port/api/batch/jobs"; then break; fi
  sleep 0.1
done
token=$("$BIN" --data-dir "$data_dir" token --user fuzz-user)

# A drawn `deadline` is moved into the window the API accepts (scripts/st_hooks.py).
export SCHEMATHESIS_HOOKS=st_hooks PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
run() {
  "$VENV/bin/st" run openapi.json --url "http://127.0.0.1:$port" --checks all \
    --header "Authorization: Bearer $token" --generation-database none --no-color "$@"
}
echo "== schemathesis $SCHEMATHESIS_VERSION, fixed seed"
run --seed 20261130 --max-examples 100
echo "== schemathesis $SCHEMATHESIS_VERSION, a fresh seed (short)"
run --max-examples 25
