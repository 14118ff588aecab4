"""``courier`` command line: run the nightly send, start the sandbox, show status."""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Courier: e-invoices to buyers by SMS."
)

SUMMARY_LINES = [
    ("invoices", "Invoices in the ledger"),
    ("pulled_new", "Invoices pulled this run"),
    ("pulled_rejected", "Source records rejected this run"),
    ("run_sms_sent", "SMS sent this run"),
    ("run_emails_sent", "E-mails sent this run"),
    ("run_charges", "Charges this run (USD)"),
    ("sms_total", "SMS sent in total"),
    ("emails_total", "E-mails sent in total"),
    ("charges_total", "Charges in total (USD)"),
    ("phone_invalid", "Invalid telephone numbers"),
    ("phone_missing", "Missing telephone numbers"),
    ("phone_not_mobile", "Not mobile numbers"),
    ("upload_failures", "Upload failures"),
    ("sends_unknown", "Sends needing a person (unknown)"),
    ("emails_unknown", "E-mails needing a person (unknown)"),
    ("emails_bounced", "E-mails bounced"),
]


def print_summary(
    summary: dict[str, Any],
    title: str = "Courier summary",
    lines: list[tuple[str, str]] = SUMMARY_LINES,
) -> None:
    width = max(len(label) for _, label in lines)
    typer.echo(f"\n{title}\n" + "-" * (width + 14))
    for key, label in lines:
        if key in summary:
            value = summary[key]
            shown = f"{Decimal(value):.4f}" if isinstance(value, Decimal) else str(value)
            typer.echo(f"{label:<{width}}  {shown:>10}")


@app.command()
def run(
    batch_size: Annotated[int | None, typer.Option(help="Invoices per batch")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Run the nightly send once (pull, render, upload, text, record)."""
    from flows.nightly import nightly_send  # the shell may use Prefect; the core never does

    summary = nightly_send(batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)


@app.command()
def resend(
    numbers: Annotated[list[str], typer.Argument(help="Invoice numbers to text again")],
    by: Annotated[str, typer.Option("--by", help="Who asks (recorded with each SMS)")],
    request_id: Annotated[
        str | None, typer.Option(help="Same id twice sends once (default: a new id)")
    ] = None,
    channel: Annotated[str, typer.Option(help="sms, email or both", case_sensitive=False)] = "sms",
) -> None:
    """Send the buyers of these invoices their invoice again: a new, charged message each
    (by SMS, e-mail or both), with a fresh link."""
    import uuid

    from flows.resend import resend as resend_flow

    chosen = {"sms": ["sms"], "email": ["email"], "both": ["sms", "email"]}.get(channel.lower())
    if chosen is None:
        typer.echo("--channel must be sms, email or both", err=True)
        raise typer.Exit(2)
    summary = resend_flow(
        numbers=numbers,
        request_id=request_id or uuid.uuid4().hex,
        requested_by=by,
        channels=chosen,
    )
    typer.echo(json.dumps(summary["result"], default=str, ensure_ascii=False))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Totals from the ledger (no services needed)."""
    from courier.ledger import Ledger

    path = _ledger_path()
    if not path.exists():
        typer.echo(f"No ledger yet at {path}; run `courier run` first.", err=True)
        raise typer.Exit(1)
    summary = Ledger(path).summary()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary, "Courier ledger")


@app.command()
def generate(
    count: Annotated[int, typer.Option(help="How many invoices")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 20261121,
    out: Annotated[Path, typer.Option(help="JSON Lines file to write")] = Path(
        "data/invoices.jsonl"
    ),
) -> None:
    """Write deterministic sample invoices (JSON Lines, the canonical format), and beside
    them the payments the sandbox ERP reports over time (``payments.jsonl``)."""
    from courier.sample_data import (
        generate_invoices,
        generate_payments,
        write_jsonl,
        write_payments_jsonl,
    )

    invoices = generate_invoices(count=count, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(invoices, out)
    payments = out.with_name("payments.jsonl")
    events = write_payments_jsonl(generate_payments(invoices, seed=seed), payments)
    typer.echo(f"wrote {len(invoices)} invoices to {out} and {events} payments to {payments}")


@app.command()
def receiver(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8710,
) -> None:
    """Receive delivery receipts and STOP replies from the gateway (signed webhooks), and
    mail that comes back (bounces, ETDA's stamped invoices) when COURIER_INBOUND_EMAIL_TOKEN
    is set."""
    import uvicorn

    from courier.ledger import Ledger
    from courier.receipts import create_receipts_app
    from courier.settings import load_settings
    from courier.snapshot import ThrottledPublisher

    settings = load_settings()
    if not settings.receipts_public_url:
        typer.echo("Set COURIER_RECEIPTS_PUBLIC_URL to the URL the gateway calls.", err=True)
        raise typer.Exit(2)
    ledger = Ledger(settings.ledger_path)
    ledger.migrate()
    publisher = ThrottledPublisher(ledger)  # the dashboard sees receipts within seconds
    app_ = create_receipts_app(
        ledger,
        settings.sms_auth_token.get_secret_value(),
        settings.receipts_public_url,
        on_write=publisher.wrote,
        inbound_email_token=settings.inbound_email_token.get_secret_value(),
        timestamp_address=settings.etax_timestamp_address,
    )
    try:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        publisher.close()


@app.command()
def opt_out(
    number: Annotated[str, typer.Argument(help="The number in E.164, e.g. +66812345678")],
    undo: Annotated[bool, typer.Option("--undo", help="Remove the opt-out")] = False,
) -> None:
    """Record (or remove) a buyer's request not to be texted."""
    from courier.ledger import Ledger
    from courier.phones import clean_phone, mask_phone
    from courier.snapshot import try_publish_snapshot

    result = clean_phone(number, "TH")
    if result.e164 is None:
        typer.echo(f"Not a valid number: {mask_phone(number)}", err=True)
        raise typer.Exit(2)
    ledger = Ledger(_ledger_path())
    ledger.migrate()
    if undo:
        ledger.remove_opt_out(result.e164)
    else:
        ledger.add_opt_out(result.e164, "manual")
    try_publish_snapshot(ledger)  # the dashboard's "opted out" counts
    typer.echo(f"{'removed' if undo else 'recorded'} opt-out for {mask_phone(result.e164)}")


email_app = typer.Typer(no_args_is_help=True, help="The e-mail channel: mail that comes back.")
app.add_typer(email_app, name="email")


@email_app.command("inbound")
def email_inbound(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Raw messages (.eml files), or - (the default) for one on stdin"),
    ] = None,
) -> None:
    """Record messages that came back (bounces, ETDA's stamped invoices): pipe a mailbox's
    incoming mail here (``| courier email inbound``) when there is no inbound webhook.
    Prints one JSON line per message; a message recorded before is marked duplicate."""
    import json
    import sys

    from courier.inbound_mail import InboundMailError, read_inbound
    from courier.ledger import Ledger
    from courier.settings import Settings
    from courier.snapshot import try_publish_snapshot

    address = os.environ.get(
        "COURIER_ETAX_TIMESTAMP_ADDRESS",
        str(Settings.model_fields["etax_timestamp_address"].default),
    )
    ledger = Ledger(_ledger_path())
    ledger.migrate()
    refused = 0
    for source in sources or ["-"]:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        try:
            mail = read_inbound(raw, address)
        except InboundMailError as error:
            typer.echo(f"Not recorded ({source}): {error}", err=True)
            refused += 1
            continue
        typer.echo(json.dumps({"source": source, **ledger.record_inbound(mail).as_dict()}))
    try_publish_snapshot(ledger)
    if refused:
        raise typer.Exit(2)


@email_app.command("channel")
def email_channel_choice(
    invoice: Annotated[str, typer.Argument(help="One of the buyer's invoice numbers")],
    channel: Annotated[str, typer.Argument(help="sms, email or both")],
    by: Annotated[str, typer.Option("--by", help="Who records the choice")],
) -> None:
    """Record how a buyer gets its invoices and reminders from now on: by SMS, e-mail or
    both (none recorded: every channel the invoice has an address for)."""
    from courier.ledger import Ledger
    from courier.ledger.mail_back import UnknownBuyer
    from courier.snapshot import try_publish_snapshot

    ledger = Ledger(_ledger_path())
    ledger.migrate()
    try:
        ledger.set_buyer_channel(invoice, channel.lower(), by)
    except (UnknownBuyer, ValueError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    try_publish_snapshot(ledger)
    typer.echo(f"the buyer of {invoice} now gets: {channel.lower()}")


reminders_app = typer.Typer(
    no_args_is_help=True, help="Payment reminders: check the rules, stop or resume chasing."
)
app.add_typer(reminders_app, name="reminders")


REMINDER_SUMMARY_LINES = [
    ("as_of", "Reminders as of"),
    ("paid_since_last_pull", "Invoices paid since the last pull"),
    ("reminders_due", "Reminder steps due"),
    ("reminders_sent", "Reminders sent this run"),
    ("reminders_emailed", "  of them by e-mail"),
    ("reminders_skipped_paid", "Reminder steps skipped: paid"),
    ("reminders_skipped_before", "Steps skipped by earlier runs"),
    ("run_charges", "Charges this run (USD)"),
    ("charges_total", "Charges in total (USD)"),
    ("sends_unknown", "Sends needing a person (unknown)"),
]


def _as_of(text: str | None) -> Any:
    """``--as-of`` as an aware datetime: ISO 8601 with its offset (which zone a bare
    date or time means is not guessed)."""
    if text is None:
        return None
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        typer.echo(
            f"--as-of must be an ISO 8601 moment with its offset, e.g. "
            f"2026-12-29T10:00+07:00, not {text!r}",
            err=True,
        )
        raise typer.Exit(2)
    return moment


@reminders_app.command("run")
def reminders_run(
    as_of: Annotated[
        str | None,
        typer.Option(help="Plan as if it were this moment (ISO 8601 with offset); default now"),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Reminders per batch")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Send the reminder steps due now by the rules (each step once per invoice)."""
    from courier.reminders.rules_file import RuleFileError
    from flows.reminders import reminders

    moment = _as_of(as_of)
    try:
        summary = reminders(as_of=moment, batch_size=batch_size)
    except RuleFileError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary, default=str, ensure_ascii=False))
        return
    print_summary(summary, "Courier reminders", REMINDER_SUMMARY_LINES)
    for label, counts in (("skipped", "reminders_skipped"), ("held", "reminders_held")):
        for reason, count in sorted(summary.get(counts, {}).items()):
            typer.echo(f"  {label}: {reason}: {count}")


@reminders_app.command("preview")
def reminders_preview(
    as_of: Annotated[
        str | None, typer.Option(help="As if it were this moment (ISO 8601 with offset)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the preview as JSON")] = False,
) -> None:
    """What the next reminders run would send and cost, without sending or recording."""
    from courier import jobs
    from courier.reminders.rules_file import RuleFileError
    from courier.settings import load_settings
    from courier.wiring import build_services

    services = build_services(load_settings())
    try:
        preview = jobs.preview_reminders(
            services.ledger,
            services.reminder_rules(),
            services.prices,
            services.settings,
            _as_of(as_of),
        )
    except RuleFileError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    if as_json:
        typer.echo(json.dumps(preview, default=str, ensure_ascii=False))
        return
    for sms in preview["sms"]:
        typer.echo(
            f"{sms['invoice_number']}  {sms['step']:<28} {sms['to']:<16} "
            f"{sms['segments']} seg  {sms['amount']} {sms['currency']}"
        )
    for reason, count in sorted(preview["held"].items()):
        typer.echo(f"held: {reason}: {count}")
    for reason, count in sorted(preview["skipped"].items()):
        typer.echo(f"skipped: {reason}: {count}")
    typer.echo(f"{len(preview['sms'])} reminder(s), quoted {preview['quoted']} USD")
    if preview["refused"]:
        typer.echo(preview["refused"])


@reminders_app.command("send-now")
def reminders_send_now(
    invoice: Annotated[str, typer.Argument(help="The invoice number")],
    rule: Annotated[str, typer.Option(help="The rule id")],
    step: Annotated[str, typer.Option(help="The step id (see `courier reminders rules`)")],
    by: Annotated[str, typer.Option("--by", help="Who asks (recorded with the SMS)")],
) -> None:
    """Send one reminder step now; the scheduled run will not send it (or an earlier
    step) again. STOP, payment, pauses, sending hours and the budget still apply."""
    from flows.reminders import send_reminder_now

    summary = send_reminder_now(invoice_number=invoice, rule_id=rule, step_id=step, by=by)
    typer.echo(json.dumps(summary["result"], default=str, ensure_ascii=False))


def _rules_path() -> Path:
    from courier.settings import Settings

    default = Settings.model_fields["reminder_rules_path"].default
    return Path(os.environ.get("COURIER_REMINDER_RULES_PATH", str(default)))


@reminders_app.command("rules")
def reminder_rules(
    path: Annotated[
        Path | None, typer.Option(help="The rules file (default: COURIER_REMINDER_RULES_PATH)")
    ] = None,
) -> None:
    """Check the rules file and show each step: when, channel, and each text's SMS segments."""
    from courier.reminders.previews import template_reports
    from courier.reminders.rules_file import RuleFileError, load_rules

    path = path or _rules_path()
    try:
        rules = load_rules(path)
    except RuleFileError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    if not path.exists():
        typer.echo(f"No rules file at {path}: no reminders are sent.")
        return
    reports = {(r.rule_id, r.step_id, r.language): r for r in template_reports(rules)}
    for rule in rules.rules:
        state = "active" if rule.active else "inactive"
        typer.echo(f"{rule.id}: {rule.name} ({state})")
        for step in rule.steps:
            typer.echo(
                f"  {step.id}: {step.offset.describe(rule.anchor)}, {'+'.join(step.channels)}"
            )
            for language in step.templates:
                report = reports.get((rule.id, step.id, language))
                if report is not None:
                    typer.echo(
                        f"    {language}: {report.encoding}, {report.segments} segment(s) "
                        f"with sample values ({report.characters} characters)"
                    )
    typer.echo(f"{path}: {len(rules.rules)} rule(s), {len(rules.active)} active — valid.")


def _pause_target(invoice: str | None, buyer_of: str | None) -> tuple[str, str]:
    if bool(invoice) == bool(buyer_of):
        typer.echo("Name exactly one of --invoice or --buyer-of.", err=True)
        raise typer.Exit(2)
    return ("invoice", str(invoice)) if invoice else ("buyer", str(buyer_of))


@reminders_app.command("pause")
def reminders_pause(
    by: Annotated[str, typer.Option("--by", help="Who stops the chasing (recorded)")],
    why: Annotated[str, typer.Option("--why", help="Why (recorded; a colleague reads it)")],
    invoice: Annotated[str | None, typer.Option(help="Pause this invoice only")] = None,
    buyer_of: Annotated[
        str | None, typer.Option(help="Pause every invoice of this invoice's buyer")
    ] = None,
) -> None:
    """Stop reminders for one invoice or for one buyer (audited: who, when, why)."""
    from courier.ledger import Ledger
    from courier.ledger.reminders import UnknownPauseTarget
    from courier.snapshot import try_publish_snapshot

    scope, target = _pause_target(invoice, buyer_of)
    ledger = Ledger(_ledger_path())
    ledger.migrate()
    try:
        ledger.pause_reminders(scope, target, why, by)  # type: ignore[arg-type]
    except (UnknownPauseTarget, ValueError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    try_publish_snapshot(ledger)
    typer.echo(f"reminders paused for the {scope} of {target}")


@reminders_app.command("resume")
def reminders_resume(
    by: Annotated[str, typer.Option("--by", help="Who resumes (recorded)")],
    why: Annotated[str, typer.Option("--why", help="Why (recorded)")],
    invoice: Annotated[str | None, typer.Option(help="Resume this invoice")] = None,
    buyer_of: Annotated[str | None, typer.Option(help="Resume this invoice's buyer")] = None,
) -> None:
    """End a pause: reminders for that invoice or buyer go out again by the rules."""
    from courier.ledger import Ledger
    from courier.snapshot import try_publish_snapshot

    scope, target = _pause_target(invoice, buyer_of)
    ledger = Ledger(_ledger_path())
    ledger.migrate()
    ended = ledger.resume_reminders(scope, target, by, why)  # type: ignore[arg-type]
    try_publish_snapshot(ledger)
    typer.echo(f"{ended} pause(s) ended for the {scope} of {target}")


def _ledger_path() -> Path:
    from courier.settings import Settings

    return Path(
        os.environ.get("COURIER_LEDGER_PATH", str(Settings.model_fields["ledger_path"].default))
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def sandbox(ctx: typer.Context) -> None:
    """Start the sandbox services (SMS gateway, document store, ERP API); see --help."""
    os.execv(sys.executable, [sys.executable, "-m", "sandbox", *ctx.args])  # noqa: S606


if __name__ == "__main__":
    app()
