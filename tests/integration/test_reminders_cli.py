"""`courier reminders`: the rules checked as a person runs it; pauses recorded with who/why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from courier.cli import app
from courier.ledger import Ledger
from courier.pulling import invoice_rows, parse_records

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def insert_invoice(ledger: Ledger, number: str) -> None:
    """One Thai invoice due 2026-12-20, its buyer textable, no documents stored."""
    record = {
        "number": number,
        "issued_at": "2026-11-20T10:00:00+07:00",
        "due_date": "2026-12-20",
        "currency": "THB",
        "vat_rate": "7",
        "seller": {"name": "Seller", "address": {"line1": "1 Road", "country": "TH"}},
        "buyer": {"name": "Buyer Co", "phone": "0812345678",
                  "address": {"line1": "2 Road", "country": "TH"}},
        "lines": [{"description": "x", "quantity": "1", "unit_price": "100.00"}],
    }  # fmt: skip
    ledger.insert_invoices(invoice_rows(parse_records([record]).invoices, "t", datetime.now(UTC)))


def test_the_shipped_rules_are_valid_and_show_their_segments():
    result = runner.invoke(
        app, ["reminders", "rules", "--path", str(REPO / "data/reminder_rules.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "overdue-chase" in result.output and "segment(s)" in result.output
    assert "valid" in result.output


def test_a_rules_file_with_a_typo_is_refused_naming_the_rule_and_the_field(tmp_path):
    text = (REPO / "data/reminder_rules.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "rules.yaml"
    broken.write_text(text.replace("    anchor: due_date", "    anchr: due_date", 1), "utf-8")
    result = runner.invoke(app, ["reminders", "rules", "--path", str(broken)])
    assert result.exit_code == 2
    assert "rule 'courtesy-before-due'" in result.output
    assert "'anchr'" in result.output and "anchor" in result.output


def test_pause_and_resume_a_buyer_from_the_command_line(tmp_path, monkeypatch):
    path = tmp_path / "ledger.duckdb"
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(path))
    ledger = Ledger(path)
    ledger.migrate()
    insert_invoice(ledger, "INV-1")

    paused = runner.invoke(
        app, ["reminders", "pause", "--buyer-of", "INV-1", "--by", "ops@example.com",
              "--why", "Paying in instalments"],
    )  # fmt: skip
    assert paused.exit_code == 0, paused.output
    assert ledger.paused_invoices() == {"INV-1": "Paying in instalments"}
    unknown = runner.invoke(
        app, ["reminders", "pause", "--invoice", "INV-404", "--by", "x", "--why", "y"]
    )
    assert unknown.exit_code == 2 and "INV-404" in unknown.output

    resumed = runner.invoke(
        app, ["reminders", "resume", "--buyer-of", "INV-1", "--by", "lead@example.com",
              "--why", "Instalments done"],
    )  # fmt: skip
    assert resumed.exit_code == 0 and "1 pause(s) ended" in resumed.output
    assert ledger.paused_invoices() == {}


def test_preview_names_what_would_wait_and_as_of_needs_its_offset(tmp_path, monkeypatch):
    import json

    path = tmp_path / "ledger.duckdb"
    for key, value in {
        "COURIER_LEDGER_PATH": str(path),
        "COURIER_PRICING_PATH": str(REPO / "data/pricing.csv"),
        "COURIER_REMINDER_RULES_PATH": str(REPO / "data/reminder_rules.yaml"),
        "COURIER_SMS_ACCOUNT_SID": "AC" + "1" * 32,
        "COURIER_SMS_AUTH_TOKEN": "t" * 32,
        "COURIER_DOCSTORE_TOKEN": "d" * 32,
        "COURIER_SENDING_HOURS": "off",
    }.items():
        monkeypatch.setenv(key, value)
    ledger = Ledger(path)
    ledger.migrate()
    insert_invoice(ledger, "INV-7")

    # 7 days overdue, but its documents were never stored: the step waits, and says why.
    preview = runner.invoke(
        app, ["reminders", "preview", "--json", "--as-of", "2026-12-27T10:00+07:00"]
    )
    assert preview.exit_code == 0, preview.output
    shown = json.loads(preview.output)
    assert shown["sms"] == [] and shown["held"] == {"Documents not stored yet": 1}
    assert shown["skipped"] == {"grace_passed": 1}  # the courtesy step, 10 days ago
    with ledger.connect() as con:  # a preview writes nothing
        assert con.execute("SELECT count(*) FROM reminder_skips").fetchall() == [(0,)]

    vague = runner.invoke(app, ["reminders", "preview", "--as-of", "2026-12-27"])
    assert vague.exit_code == 2 and "with its offset" in vague.output
