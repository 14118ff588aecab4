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
MAIL=http://127.0.0.1:8704
# The sample's Egyptian buyers' mailboxes "do not exist" at the sandbox relay: their
# e-mails bounce, and the bounces stop later e-mail to them.
curl -fsS -o /dev/null -X POST "$MAIL/_sandbox/config" -H 'Content-Type: application/json' \
  -d '{"bounce": ["@example.com.eg"]}'
"$PY" -m courier run

# Mail back (bounces, ETDA's stamped invoices) reaches Courier as a mailbox pipe would
# deliver it: each message the relay sent back, into `courier email inbound`.
mail_back() {
  local dir
  dir=$(mktemp -d)
  "$PY" - "$MAIL" "$dir" <<'PY'
import sys
from pathlib import Path

import httpx

base, out = sys.argv[1], Path(sys.argv[2])
for entry in httpx.get(f"{base}/_sandbox/outbound", timeout=30).json()["outbound"]:
    raw = httpx.get(f"{base}/_sandbox/outbound/{entry['n']}/raw", timeout=30).content
    (out / f"{entry['n']:05d}-{entry['kind']}.eml").write_bytes(raw)
PY
  if compgen -G "$dir/*.eml" >/dev/null; then
    "$PY" -m courier email inbound "$dir"/*.eml | "$PY" -c '
import collections, json, sys
rows = [json.loads(line) for line in sys.stdin]
new = dict(collections.Counter(r["kind"] for r in rows if not r["duplicate"]))
print("mail back recorded:", new or "nothing new", f"({len(rows)} messages read)")'
  fi
  rm -rf "$dir"
}
mail_back

# Then the reminders flow at a later date, as if the days had passed: the ERP sandbox
# reports the payments made by then, and the due rule steps go out (each once).
AS_OF="${DEMO_AS_OF:-2026-12-29T10:00:00+07:00}"
"$PY" - "$COURIER_INVOICE_SOURCE" "$AS_OF" <<'PY'
import sys

import httpx

httpx.post(f"{sys.argv[1]}/_sandbox/config", json={"clock": sys.argv[2]}, timeout=10).raise_for_status()
PY
"$PY" -m courier reminders run --as-of "$AS_OF"
mail_back
echo
echo "Ledger: data/ledger.duckdb (views invoice_status, deliveries, charges, reminder_history)."
echo "Dashboard: make dashboard    Prefect UI: ${PREFECT_API_URL%/api}    Stop services: make stop"
