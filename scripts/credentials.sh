#!/usr/bin/env bash
# Sourced by the demo scripts: makes (once) random credentials for the local sandbox and
# exports them both to the sandbox and to Courier. Real credentials come from the
# environment or .env instead (see .env.example) and are never written by this script.
CRED_FILE=data/sandbox/credentials.env
if [ ! -f "$CRED_FILE" ]; then
  mkdir -p "$(dirname "$CRED_FILE")"
  umask 077
  python3 - >"$CRED_FILE" <<'PY'
import secrets
sid = "AC" + secrets.token_hex(16)
print(f"SANDBOX_ACCOUNT_SID={sid}")
print(f"SANDBOX_AUTH_TOKEN={secrets.token_hex(16)}")
print(f"SANDBOX_DOCS_TOKEN={secrets.token_urlsafe(24)}")
PY
fi
set -a
# shellcheck disable=SC1090
source "$CRED_FILE"
set +a
export COURIER_SMS_ACCOUNT_SID="${COURIER_SMS_ACCOUNT_SID:-$SANDBOX_ACCOUNT_SID}"
export COURIER_SMS_AUTH_TOKEN="${COURIER_SMS_AUTH_TOKEN:-$SANDBOX_AUTH_TOKEN}"
export COURIER_DOCSTORE_TOKEN="${COURIER_DOCSTORE_TOKEN:-$SANDBOX_DOCS_TOKEN}"
export COURIER_SMS_BASE_URL="${COURIER_SMS_BASE_URL:-http://127.0.0.1:8701}"
export COURIER_DOCSTORE_URL="${COURIER_DOCSTORE_URL:-http://127.0.0.1:8702}"
export COURIER_INVOICE_SOURCE="${COURIER_INVOICE_SOURCE:-http://127.0.0.1:8703}"
# The sandbox's buyers are fictional, so against it Courier texts at any hour; a real
# deployment keeps the default 09:00-21:00 in each buyer's local time.
export COURIER_SENDING_HOURS="${COURIER_SENDING_HOURS:-off}"
# E-mail through the sandbox mail relay (plain SMTP on loopback). The sample's first Thai
# seller (บริษัท สยามคลาวด์) is in ETDA's e-Tax by e-mail scheme: its e-mails go From its
# own address with a copy to the time-stamp mailbox (the sandbox stands in for it).
export COURIER_SMTP_HOST="${COURIER_SMTP_HOST:-127.0.0.1}"
export COURIER_SMTP_PORT="${COURIER_SMTP_PORT:-8725}"
export COURIER_SMTP_SECURITY="${COURIER_SMTP_SECURITY:-none}"
export COURIER_EMAIL_FROM="${COURIER_EMAIL_FROM:-Courier Billing <billing@courier.example>}"
export COURIER_ETAX_EMAIL_SELLERS="${COURIER_ETAX_EMAIL_SELLERS:-0105561042172}"
