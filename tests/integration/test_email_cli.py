"""The e-mail commands: a buyer's channel choice, and mail piped back in."""

from __future__ import annotations

from typer.testing import CliRunner

from courier.cli import app
from courier.ledger import Ledger
from tests.integration.test_reminders_cli import insert_invoice
from tests.unit.test_inbound_mail import POSTFIX_BOUNCE

runner = CliRunner()


def test_a_buyers_channel_choice_is_recorded_and_wrong_ones_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "ledger.duckdb"
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(path))
    ledger = Ledger(path)
    ledger.migrate()
    insert_invoice(ledger, "TH-1")
    done = runner.invoke(app, ["email", "channel", "TH-1", "email", "--by", "ops"])
    assert done.exit_code == 0, done.output
    candidates = ledger.send_candidates()
    assert list(candidates["channel_preference"]) == ["email"]
    wrong = runner.invoke(app, ["email", "channel", "TH-1", "fax", "--by", "ops"])
    assert wrong.exit_code == 2 and "sms, email, both" in wrong.output
    unknown = runner.invoke(app, ["email", "channel", "NOPE", "sms", "--by", "ops"])
    assert unknown.exit_code == 2 and "NOPE" in unknown.output


def test_a_bounce_piped_in_is_recorded_once(tmp_path, monkeypatch):
    path = tmp_path / "ledger.duckdb"
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(path))
    first = runner.invoke(app, ["email", "inbound", "-"], input=POSTFIX_BOUNCE)
    again = runner.invoke(app, ["email", "inbound", "-"], input=POSTFIX_BOUNCE)
    assert first.exit_code == 0 and '"duplicate": false' in first.output
    assert '"duplicate": true' in again.output
    assert Ledger(path).bounced_addresses() == {"ap101@buyer.example"}
    bad = runner.invoke(app, ["email", "inbound", "-"], input=b"")
    assert bad.exit_code == 2 and "Not recorded" in bad.output
