#!/usr/bin/env bash
# Starts or stops the local services the demo uses, in the background:
#   the sandbox (SMS gateway :8701, document store :8702, ERP invoice API :8703, mail
#   relay SMTP :8725 with its inspection API :8704)
#   and a persistent Prefect server (:4200), so flow runs are recorded and fast.
# Usage: scripts/services.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=.run
mkdir -p "$RUN_DIR" data/sandbox
PY=.venv/bin/python
PREFECT_PORT="${PREFECT_PORT:-4200}"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT=false

# shellcheck disable=SC1091
source scripts/credentials.sh

healthy() { curl -fs -o /dev/null --max-time 2 "$1"; }

wait_for() {  # url seconds name
  local deadline=$((SECONDS + $2))
  until healthy "$1"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "error: $3 did not become healthy in $2 s (log: $RUN_DIR/$3.log)" >&2
      tail -n 20 "$RUN_DIR/$3.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

start_one() {  # name health-url seconds command...
  local name=$1 url=$2 wait=$3
  shift 3
  if healthy "$url"; then
    echo "$name already running"
    return 0
  fi
  setsid nohup "$@" >"$RUN_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  wait_for "$url" "$wait" "$name"
  echo "$name started (log: $RUN_DIR/$name.log)"
}

stop_one() {
  local pidfile="$RUN_DIR/$1.pid"
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "$1 stopped"
  fi
}

case "${1:-}" in
  start)
    start_one sandbox "http://127.0.0.1:8701/_sandbox/health" 30 \
      "$PY" -m sandbox --state-dir data/sandbox --invoices data/invoices.jsonl
    start_one prefect "http://127.0.0.1:$PREFECT_PORT/api/health" 90 \
      .venv/bin/prefect server start --host 127.0.0.1 --port "$PREFECT_PORT"
    ;;
  stop)
    stop_one prefect
    stop_one sandbox
    ;;
  status)
    for url in "http://127.0.0.1:8701/_sandbox/health" "http://127.0.0.1:$PREFECT_PORT/api/health"; do
      if healthy "$url"; then echo "up:   $url"; else echo "down: $url"; fi
    done
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
