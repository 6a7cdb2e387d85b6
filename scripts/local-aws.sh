#!/usr/bin/env bash
# Installs moto server (pinned) into .venv and starts it on 127.0.0.1 on a free port.
#   scripts/local-aws.sh start   -> prints MOTO_ENDPOINT=http://127.0.0.1:PORT, pid in .venv/moto.pid
#   scripts/local-aws.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
VENV=".venv"
PIDFILE="$VENV/moto.pid"

install() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(0 if moto.__version__ == '$MOTO_VERSION' else 1)" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
  start)
    install
    port=$(free_port)
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$VENV/moto.log" 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 100); do
      if curl -fs "http://127.0.0.1:$port/moto-api/" > /dev/null 2>&1; then
        echo "MOTO_ENDPOINT=http://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.2
    done
    echo "moto server did not start; see $VENV/moto.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      kill "$(cat "$PIDFILE")" 2>/dev/null || true
      rm -f "$PIDFILE"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
