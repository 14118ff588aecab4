"""The outbox: one row per intent to send, claimed before the gateway is called, and the
one charge row of each accepted send (see ``courier.sending`` for the protocol)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from courier.ledger.connection import LedgerFile, now_utc


@dataclass(frozen=True)
class AcceptedSend:
    key: str
    provider_sid: str
    provider_status: str
    attempts: int
    charge: dict[str, Any]  # invoice_number, destination_country, segments, unit_price, ...


@dataclass(frozen=True)
class FailedSend:
    key: str
    status: str  # failed | retry | unknown
    error_code: str | None
    reason: str
    attempts: int


#: The outbox columns an intent fills in, and its guards (checked when it is claimed).
_INTENT_COLUMNS = (
    "idempotency_key",
    "invoice_number",
    "purpose",
    "requested_by",
    "channel",
    "to_e164",
    "destination_country",
    "body",
    "encoding",
    "segments",
    "unit_price",
    "amount",
    "currency",
    "run_id",
    "stop_when_paid",
    "pausable",
    "to_address",
    "from_address",
    "cc_address",
    "subject",
    "body_html",
    "message_id",
    "attachment_url",
)


_TEXT_COLUMNS = ("to_e164", *_INTENT_COLUMNS[_INTENT_COLUMNS.index("to_address") :])


@dataclass(frozen=True)
class Claim:
    """What a claim took (``claimed`` keys) and what its guards refused (key -> why:
    ``opted_out``, ``bounced``, ``paid`` or ``paused``)."""

    claimed: set[str]
    refused: dict[str, str]


class Outbox(LedgerFile):
    def send_candidates(self) -> pd.DataFrame:
        """Every invoice with what planning needs: phone, documents, earlier messages."""
        with self.connect() as con:
            return con.execute(
                """
                SELECT i.invoice_number, i.issued_at, i.buyer_country, i.phone_status,
                       i.phone_e164, i.record_json, i.email_status, i.buyer_email,
                       i.buyer_key, bc.channel AS channel_preference,
                       any_value(d.url) FILTER (WHERE d.kind = 'pdf') AS pdf_url,
                       any_value(d.size_bytes) FILTER (WHERE d.kind = 'pdf') AS pdf_bytes,
                       count(d.invoice_number) AS uploaded_documents,
                       EXISTS (SELECT 1 FROM messages m
                               WHERE m.invoice_number = i.invoice_number
                                 AND m.cc_address IS NOT NULL
                                 AND m.status IN ('accepted', 'sending', 'unknown'))
                           AS etax_copied
                FROM invoices i
                LEFT JOIN documents d
                    ON d.invoice_number = i.invoice_number
                    AND d.status IN ('uploaded', 'not_applicable')
                LEFT JOIN buyer_channels bc ON bc.buyer_key = i.buyer_key
                GROUP BY ALL
                ORDER BY i.issued_at, i.invoice_number
                """
            ).df()

    def message_keys(self, numbers: Sequence[str] | None = None) -> pd.DataFrame:
        """Every outbox row's key, invoice, purpose, channel and status (of ``numbers``
        only when given)."""
        where, params = (
            ("", [])
            if numbers is None
            else (" WHERE invoice_number IN (SELECT unnest(?))", [list(numbers)])
        )
        with self.connect() as con:
            return con.execute(
                "SELECT idempotency_key, invoice_number, purpose, channel, status FROM messages"
                + where,
                params,
            ).df()

    def bounced_addresses(self) -> set[str]:
        """Addresses (lower-cased) a permanent bounce came back from."""
        with self.connect() as con:
            return {
                row[0] for row in con.execute("SELECT address FROM bounced_addresses").fetchall()
            }

    # -- outbox ----------------------------------------------------------------------

    def claim_intent(self, intent: dict[str, Any]) -> bool:
        """Write the outbox row *before* calling the gateway. False if the key exists."""
        return bool(self.claim_intents([intent]))

    def claim_intents(self, intents: Sequence[dict[str, Any]]) -> set[str]:
        """Claim a group of intents in one transaction: each new key gets its ``pending``
        outbox row, and a ``retry`` row (transient failure last time) is taken again.
        Returns the keys this call claimed; any other key is someone else's, final, or
        refused by a guard (``claim_intents_guarded`` says which)."""
        return self.claim_intents_guarded(intents).claimed

    def claim_intents_guarded(self, intents: Sequence[dict[str, Any]]) -> Claim:
        """``claim_intents``, re-checking in the same transaction what may have changed
        since the intents were planned: the number opted out (STOP), the address bounced,
        and for reminders the
        invoice paid (``stop_when_paid``) or its reminders paused (``pausable``). A refused
        intent gets no outbox row: a later run decides again."""
        if not intents:
            return Claim(set(), {})
        stamp = now_utc()
        frame = pd.DataFrame([{c: intent.get(c) for c in _INTENT_COLUMNS} for intent in intents])
        frame = frame.drop_duplicates("idempotency_key")
        frame["unit_price"] = frame["unit_price"].astype(str)  # exact, cast by DuckDB
        frame["amount"] = frame["amount"].astype(str)
        frame["segments"] = frame["segments"].astype(int)
        frame["channel"] = frame["channel"].fillna("sms")
        for column in _TEXT_COLUMNS:  # typed even when all empty (an SMS has no subject)
            frame[column] = frame[column].astype("string")
        frame["stop_when_paid"] = frame["stop_when_paid"].fillna(False).astype(bool)
        frame["pausable"] = frame["pausable"].fillna(False).astype(bool)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("new_intents", frame)
                refused = dict(
                    con.execute(
                        """
                        SELECT n.idempotency_key,
                               CASE WHEN o.phone_e164 IS NOT NULL THEN 'opted_out'
                                    WHEN b.address IS NOT NULL THEN 'bounced'
                                    WHEN n.stop_when_paid AND i.payment_status = 'paid'
                                        THEN 'paid'
                                    WHEN n.pausable AND p.invoice_number IS NOT NULL
                                        THEN 'paused' END AS why
                        FROM new_intents n
                        LEFT JOIN opt_outs o ON o.phone_e164 = n.to_e164
                        LEFT JOIN bounced_addresses b
                            ON n.channel = 'email' AND b.address = lower(n.to_address)
                        LEFT JOIN invoices i ON i.invoice_number = n.invoice_number
                        LEFT JOIN reminder_pause_in_force p
                            ON p.invoice_number = n.invoice_number
                        WHERE why IS NOT NULL
                        """
                    ).fetchall()
                )
                allowed = frame[~frame["idempotency_key"].isin(list(refused))]
                con.unregister("new_intents")
                con.register("allowed_intents", allowed)
                inserted = con.execute(
                    """
                    INSERT INTO messages (idempotency_key, invoice_number, purpose, requested_by,
                        channel, to_e164, destination_country, body, encoding, segments,
                        unit_price, amount, currency, status, attempts, run_id, created_at,
                        updated_at, to_address, from_address, cc_address, subject, body_html,
                        message_id, attachment_url)
                    SELECT idempotency_key, invoice_number, purpose, requested_by, channel,
                        to_e164, destination_country, body, encoding, segments,
                        CAST(unit_price AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 6)),
                        currency, 'pending', 0, run_id, ?, ?, to_address, from_address,
                        cc_address, subject, body_html, message_id, attachment_url
                    FROM allowed_intents
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING idempotency_key
                    """,
                    [stamp, stamp],
                ).fetchall()
                reopened = con.execute(
                    """
                    UPDATE messages SET status = 'pending', run_id = n.run_id, updated_at = ?
                    FROM allowed_intents n
                    WHERE messages.idempotency_key = n.idempotency_key
                      AND messages.status = 'retry'
                    RETURNING messages.idempotency_key
                    """,
                    [stamp],
                ).fetchall()
                con.unregister("allowed_intents")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return Claim({row[0] for row in inserted} | {row[0] for row in reopened}, refused)

    def mark_sending(self, keys: Sequence[str]) -> None:
        """An e-mail is about to be handed to the relay: if the process dies now, the row
        says it may have gone (``sending``), unlike one never tried (``pending``)."""
        with self.connect() as con:
            con.execute(
                "UPDATE messages SET status = 'sending', updated_at = ? "
                "WHERE idempotency_key IN (SELECT unnest(?)) AND status = 'pending'",
                [now_utc(), list(keys)],
            )

    def pending_intents(self) -> list[dict[str, Any]]:
        """Rows a process died with between claiming and recording: ``pending`` (never
        handed over, or an SMS to look up) and ``sending`` (an e-mail that may have gone)."""
        with self.connect() as con:
            cursor = con.execute("SELECT * FROM messages WHERE status IN ('pending', 'sending')")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def record_accepted(
        self,
        key: str,
        provider_sid: str,
        provider_status: str,
        charge: dict[str, Any],
        attempts: int,
    ) -> None:
        """Mark one intent accepted and write its one charge row (see ``record_outcomes``)."""
        self.record_outcomes(
            [AcceptedSend(key, provider_sid, provider_status, attempts, charge)], []
        )

    def record_failure(
        self, key: str, status: str, error_code: str | None, reason: str, attempts: int
    ) -> None:
        """``failed`` (permanent), ``retry`` (transient, next run) or ``unknown`` (a person)."""
        self.record_outcomes([], [FailedSend(key, status, error_code, reason, attempts)])

    def record_outcomes(
        self, accepted: Sequence[AcceptedSend], failed: Sequence[FailedSend]
    ) -> None:
        """Write a group of send outcomes in one transaction: each accepted intent with its
        one charge row (never one without the other), each failure with its reason."""
        if not accepted and not failed:
            return
        stamp = now_utc()

        def write(con: duckdb.DuckDBPyConnection) -> None:
            # Set-based writes (one statement per kind): row-by-row UPDATEs cost ~3 ms
            # each in DuckDB, which would throttle sending.
            if accepted:
                frame = pd.DataFrame(
                    {
                        "key": [a.key for a in accepted],
                        "sid": [a.provider_sid for a in accepted],
                        "provider_status": [a.provider_status for a in accepted],
                        "attempts": [a.attempts for a in accepted],
                        "invoice_number": [a.charge["invoice_number"] for a in accepted],
                        "country": [a.charge["destination_country"] for a in accepted],
                        "segments": [int(a.charge["segments"]) for a in accepted],
                        # exact strings, cast to DECIMAL by DuckDB: no float on the way
                        "unit_price": [str(a.charge["unit_price"]) for a in accepted],
                        "amount": [str(a.charge["amount"]) for a in accepted],
                        "currency": [a.charge["currency"] for a in accepted],
                        "run_id": [a.charge.get("run_id") for a in accepted],
                    }
                )
                con.register("accepted_sends", frame)
                con.execute(
                    """
                    UPDATE messages SET status = 'accepted', provider_sid = a.sid,
                        -- a receipt or bounce that beat this write keeps its status
                        provider_status = coalesce(messages.provider_status,
                                                   a.provider_status),
                        attempts = messages.attempts + a.attempts, sent_at = ?,
                        updated_at = ?, error_code = NULL, error_reason = NULL
                    FROM accepted_sends a WHERE messages.idempotency_key = a.key
                    """,
                    [stamp, stamp],
                )
                con.execute(
                    """
                    INSERT INTO sms_charges (idempotency_key, invoice_number, provider_sid,
                        destination_country, segments, unit_price, amount, currency,
                        run_id, charged_at)
                    SELECT key, invoice_number, sid, country, segments,
                           CAST(unit_price AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 6)),
                           currency, run_id, ?
                    FROM accepted_sends
                    ON CONFLICT (idempotency_key) DO NOTHING
                    """,
                    [stamp],
                )
                con.unregister("accepted_sends")
            if failed:
                frame = pd.DataFrame(
                    {
                        "key": [f.key for f in failed],
                        "status": [f.status for f in failed],
                        "error_code": [f.error_code for f in failed],
                        "reason": [f.reason for f in failed],
                        "attempts": [f.attempts for f in failed],
                    }
                )
                con.register("failed_sends", frame)
                con.execute(
                    """
                    UPDATE messages SET status = f.status, error_code = f.error_code,
                        error_reason = f.reason, attempts = messages.attempts + f.attempts,
                        updated_at = ?
                    FROM failed_sends f WHERE messages.idempotency_key = f.key
                    """,
                    [stamp],
                )
                con.unregister("failed_sends")

        self.transaction(write)

    def send_all_candidates(self, numbers: Sequence[str]) -> pd.DataFrame:
        """``send_candidates()`` of ``numbers`` only (phone, address, channel preference,
        documents, PDF size, whether the time-stamp mailbox had its copy), plus each
        invoice's last accepted SMS (``last_sent_at``): what the dashboard's "Send All"
        preview starts from."""
        with self.connect(read_only=True) as con:
            return con.execute(
                """
                WITH docs AS (
                    SELECT invoice_number,
                           any_value(url) FILTER (WHERE kind = 'pdf') AS pdf_url,
                           any_value(size_bytes) FILTER (WHERE kind = 'pdf') AS pdf_bytes,
                           count(*) AS uploaded_documents
                    FROM documents WHERE status IN ('uploaded', 'not_applicable')
                    GROUP BY invoice_number
                ), sent AS (
                    -- SMS only: "Already sent today" is about texting; an e-mail is apart.
                    SELECT invoice_number, max(sent_at) AS last_sent_at
                    FROM messages WHERE status = 'accepted' AND channel = 'sms'
                    GROUP BY invoice_number
                )
                SELECT i.invoice_number, i.issued_at, i.buyer_country, i.phone_status,
                       i.phone_e164, i.record_json, i.email_status, i.buyer_email,
                       i.buyer_key, bc.channel AS channel_preference, d.pdf_url, d.pdf_bytes,
                       coalesce(d.uploaded_documents, 0) AS uploaded_documents,
                       EXISTS (SELECT 1 FROM messages m
                               WHERE m.invoice_number = i.invoice_number
                                 AND m.cc_address IS NOT NULL
                                 AND m.status IN ('accepted', 'sending', 'unknown'))
                           AS etax_copied,
                       s.last_sent_at
                FROM invoices i
                LEFT JOIN docs d USING (invoice_number)
                LEFT JOIN sent s USING (invoice_number)
                LEFT JOIN buyer_channels bc ON bc.buyer_key = i.buyer_key
                WHERE i.invoice_number IN (SELECT unnest(?))
                ORDER BY i.issued_at, i.invoice_number
                """,
                [list(numbers)],
            ).df()
