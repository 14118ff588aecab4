#!/usr/bin/env bash
# `make demo`: sample data -> sandbox + Prefect server -> one nightly run -> summary.
# Safe to run again: the second run pulls nothing new and sends nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:${PREFECT_PORT:-4200}/api}"
export PREFECT_LOGGING_LEVEL="${PREFECT_LOGGING_LEVEL:-WARNING}"

if [ ! -f data/invoices.jsonl ]; then
  "$PY" -m courier generate --count "${DEMO_INVOICES:-500}" --out data/invoices.jsonl
fi
scripts/services.sh start
# shellcheck disable=SC1091
source scripts/credentials.sh
"$PY" -m courier run
echo
echo "Ledger: data/ledger.duckdb (views invoice_status, charges)."
echo "Dashboard: make dashboard    Prefect UI: ${PREFECT_API_URL%/api}    Stop services: make stop"
