"""Runs (each flow run recorded with its summary) and the ledger's totals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from courier.ledger.connection import LedgerFile, now_utc
from courier.ledger.connection import count_rows as _count


class Runs(LedgerFile):
    def start_run(self, run_id: str, flow: str) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, flow, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [run_id, flow, now_utc()],
            )

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET finished_at = ?, summary_json = ? WHERE run_id = ?",
                [now_utc(), json.dumps(summary, default=str), run_id],
            )

    def summary(self, run_id: str | None = None) -> dict[str, Any]:
        """Totals for the whole ledger, plus what ``run_id`` itself did when given."""
        with self.connect(read_only=False) as con:
            totals = con.execute(
                """
                SELECT count(*),
                       count(*) FILTER (WHERE phone_status = 'ok'),
                       count(*) FILTER (WHERE phone_status = 'invalid'),
                       count(*) FILTER (WHERE phone_status = 'missing'),
                       count(*) FILTER (WHERE phone_status = 'not_mobile'),
                       count(*) FILTER (WHERE document_status = 'failed'),
                       count(*) FILTER (WHERE document_status <> 'uploaded'),
                       count(*) FILTER (WHERE sms_status = 'sent'),
                       count(*) FILTER (WHERE sms_status = 'unknown'),
                       count(*) FILTER (WHERE email_send_status = 'sent'),
                       count(*) FILTER (WHERE email_send_status = 'unknown'),
                       count(*) FILTER (WHERE email_send_status = 'bounced')
                FROM invoice_status
                """
            ).fetchall()[0]
            sms_total, emails_total, charges_total = con.execute(
                "SELECT count(*) FILTER (WHERE channel = 'sms'), "
                "count(*) FILTER (WHERE channel = 'email'), coalesce(sum(amount), 0) "
                "FROM charges"
            ).fetchall()[0]
            rejects = _count(con, "invoice_rejects")
            result: dict[str, Any] = {
                "invoices": totals[0],
                "phone_ok": totals[1],
                "phone_invalid": totals[2],
                "phone_missing": totals[3],
                "phone_not_mobile": totals[4],
                "upload_failures": totals[5],
                "documents_missing": totals[6],
                "invoices_sent": totals[7],
                "sends_unknown": totals[8],
                "invoices_emailed": totals[9],
                "emails_unknown": totals[10],
                "emails_bounced": totals[11],
                "sms_total": sms_total,
                "emails_total": emails_total,
                "charges_total": Decimal(charges_total),
                "rejected_records": rejects,
            }
            if run_id is not None:
                run_sms, run_emails, run_charges = con.execute(
                    "SELECT count(*) FILTER (WHERE channel = 'sms'), "
                    "count(*) FILTER (WHERE channel = 'email'), coalesce(sum(amount), 0) "
                    "FROM charges WHERE run_id = ?",
                    [run_id],
                ).fetchall()[0]
                result["run_sms_sent"] = run_sms
                result["run_emails_sent"] = run_emails
                result["run_charges"] = Decimal(run_charges)
            return result
