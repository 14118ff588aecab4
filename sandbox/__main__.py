"""``python -m sandbox``: run the SMS gateway, document store, invoice API and mail relay
(SMTP, with its inspection API) in one process.

Each service logs one line with its URL once it is serving; SIGINT/SIGTERM stop them all
gracefully (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from sandbox._common import KnobError, Knobs
from sandbox.docstore import create_docstore_app
from sandbox.invoice_api import create_invoice_api_app
from sandbox.server import base_url_for, bind_socket, make_config
from sandbox.sms_gateway import create_sms_app
from sandbox.smtp_server import KNOBS as SMTP_KNOBS
from sandbox.smtp_server import (
    Mailbox,
    SandboxHandler,
    create_smtp_inspection_app,
    make_smtp_factory,
)

log = logging.getLogger("sandbox")

# Obvious sandbox placeholders, never real credentials.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "sandbox-auth-token"  # noqa: S105
DEFAULT_DOCS_TOKEN = "sandbox-docs-token"  # noqa: S105


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``main`` (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Local stand-ins for the SMS gateway, document store and invoice API.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path("data/sandbox"), help="SQLite and files"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sms-port", type=int, default=8701, help="0 picks a free port")
    parser.add_argument("--docs-port", type=int, default=8702, help="0 picks a free port")
    parser.add_argument("--erp-port", type=int, default=8703, help="0 picks a free port")
    parser.add_argument(
        "--mail-port", type=int, default=8704, help="mail relay's inspection API; 0 picks one"
    )
    parser.add_argument("--smtp-port", type=int, default=8725, help="SMTP; 0 picks a free port")
    parser.add_argument(
        "--smtp-username",
        default=env.get("SANDBOX_SMTP_USERNAME") or None,
        help="env SANDBOX_SMTP_USERNAME; with it, SMTP AUTH is required (None: no auth)",
    )
    parser.add_argument(
        "--smtp-password",
        default=env.get("SANDBOX_SMTP_PASSWORD", ""),
        help="env SANDBOX_SMTP_PASSWORD",
    )
    parser.add_argument(
        "--smtp-inbound-url",
        default=env.get("SANDBOX_SMTP_INBOUND_URL") or None,
        help="env SANDBOX_SMTP_INBOUND_URL; where the mail relay POSTs the bounces and"
        " time-stamp replies it generates (knob inbound_url; None: kept only)",
    )
    parser.add_argument(
        "--smtp-inbound-token",
        default=env.get("SANDBOX_SMTP_INBOUND_TOKEN") or None,
        help="env SANDBOX_SMTP_INBOUND_TOKEN; bearer token for those POSTs (knob inbound_token)",
    )
    parser.add_argument(
        "--invoices", type=Path, default=Path("data/invoices.jsonl"), help="JSON Lines file"
    )
    parser.add_argument(
        "--payments",
        type=Path,
        default=Path("data/payments.jsonl"),
        help="JSON Lines file of payment events for the invoice API (missing: none)",
    )
    parser.add_argument(
        "--account-sid",
        default=env.get("SANDBOX_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
        help="env SANDBOX_ACCOUNT_SID",
    )
    parser.add_argument(
        "--auth-token",
        default=env.get("SANDBOX_AUTH_TOKEN", DEFAULT_AUTH_TOKEN),
        help="env SANDBOX_AUTH_TOKEN",
    )
    parser.add_argument(
        "--docs-token",
        default=env.get("SANDBOX_DOCS_TOKEN", DEFAULT_DOCS_TOKEN),
        help="env SANDBOX_DOCS_TOKEN",
    )
    parser.add_argument(
        "--erp-token",
        default=env.get("SANDBOX_ERP_TOKEN") or None,
        help="env SANDBOX_ERP_TOKEN; bearer token the invoice API requires (None: no auth)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--access-log", action="store_true", help="log every request")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    ports = {
        "sms gateway": args.sms_port,
        "document store": args.docs_port,
        "invoice api": args.erp_port,
        "mail inspection": args.mail_port,
        "smtp": args.smtp_port,
    }
    try:  # before binding anything: a bad value is reported and nothing is left open
        mail_knobs = Knobs(
            SMTP_KNOBS,
            {"inbound_url": args.smtp_inbound_url, "inbound_token": args.smtp_inbound_token},
        )
    except KnobError as exc:
        log.error("bad mail relay setting: %s", exc)
        return 2
    sockets: dict[str, socket.socket] = {}
    for name, port in ports.items():
        try:
            sockets[name] = bind_socket(args.host, port)
        except OSError as exc:
            for sock in sockets.values():
                sock.close()
            log.error("cannot listen on %s:%s for the %s: %s", args.host, port, name, exc)
            return 2
    mail = SandboxHandler(Mailbox(state_dir / "mail"), mail_knobs)
    loop = asyncio.get_running_loop()
    smtp_socket = sockets.pop("smtp")
    smtp = await loop.create_server(
        make_smtp_factory(mail, args.smtp_username, args.smtp_password), sock=smtp_socket
    )
    apps = {
        "sms gateway": create_sms_app(state_dir / "sms", args.account_sid, args.auth_token),
        "document store": create_docstore_app(state_dir / "docs", args.docs_token),
        "invoice api": create_invoice_api_app(
            args.invoices, api_token=args.erp_token, payments_path=args.payments
        ),
        "mail inspection": create_smtp_inspection_app(mail),
    }

    uvicorn_level = "info" if args.access_log else "warning"
    servers = {
        name: _Server(make_config(app, log_level=uvicorn_level, access_log=args.access_log))
        for name, app in apps.items()
    }

    def request_exit(sig: signal.Signals) -> None:
        log.info("received %s, shutting down", sig.name)
        for server in servers.values():
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_exit, sig)

    async def announce() -> None:
        while not all(server.started for server in servers.values()):
            if any(server.should_exit for server in servers.values()):
                return
            await asyncio.sleep(0.02)
        for name, sock in sockets.items():
            log.info("%-15s %s", name, base_url_for(sock))
        host, port = smtp_socket.getsockname()[:2]
        log.info("%-15s smtp://%s:%s", "smtp", host, port)
        log.info(
            "sms account %s (auth token from --auth-token / SANDBOX_AUTH_TOKEN); "
            "state in %s; invoices from %s; payments from %s%s",
            args.account_sid,
            state_dir,
            args.invoices,
            args.payments,
            "" if args.payments.exists() else " (not there yet: no payments)",
        )

    results = await asyncio.gather(
        *(server.serve(sockets=[sockets[name]]) for name, server in servers.items()),
        announce(),
        return_exceptions=True,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
    smtp.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        log.error("service failed: %r", failure)
    log.info("stopped")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
