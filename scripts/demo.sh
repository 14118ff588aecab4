#!/usr/bin/env bash
# `make demo`: sample data -> sandbox + Prefect server -> one nightly run -> summary,
# then the reminders flow as of a later date (DEMO_AS_OF) -> its summary.
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

# Then the reminders flow at a later date, as if the days had passed: the ERP sandbox
# reports the payments made by then, and the due rule steps go out (each once).
AS_OF="${DEMO_AS_OF:-2026-12-29T10:00:00+07:00}"
"$PY" - "$COURIER_INVOICE_SOURCE" "$AS_OF" <<'PY'
import sys

import httpx

httpx.post(f"{sys.argv[1]}/_sandbox/config", json={"clock": sys.argv[2]}, timeout=10).raise_for_status()
PY
"$PY" -m courier reminders run --as-of "$AS_OF"
echo
echo "Ledger: data/ledger.duckdb (views invoice_status, charges, reminder_history)."
echo "Dashboard: make dashboard    Prefect UI: ${PREFECT_API_URL%/api}    Stop services: make stop"
