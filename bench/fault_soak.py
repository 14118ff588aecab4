"""The long version of the fault proof: many SMS through a gateway failing ~30% of calls.

    .venv/bin/python bench/fault_soak.py [--count 2000] [--runs 5]

The sandbox gateway (its own process) answers 15% of creates with 5xx (not accepted), 10%
"accepted but the answer lost" after our read timeout, and rate-limits bursts (429 with
Retry-After). The real sender (outbox in DuckDB, retry policy, look-ups) sends ``count``
intents; runs repeat until nothing is left to retry (each run is a new Sender, as a new
flow run would be). Prints what was injected and checks what matters: each intent accepted
exactly once at the gateway, and the ledger's charge rows equal the gateway's record.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from sms_rate_bench import ACCOUNT_SID, TOKEN, start_gateway

from courier.adapters.sms import TwilioSmsGateway
from courier.ledger import Ledger
from courier.retry import RetryPolicy
from courier.sending import Sender
from tests.support.factories import on_issue_intents


def main() -> None:
    logging.getLogger("stamina").setLevel(logging.ERROR)
    logging.getLogger("courier").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5, help="most runs to finish retries")
    args = parser.parse_args()
    knobs = {
        "seed": 7,
        "fail_rate": 0.15,
        "lost_response_rate": 0.10,
        "lost_response_delay_ms": 1500,
        "rate_limit_per_s": 40,
        "delivery_delay_s": 0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        url, process = start_gateway(Path(tmp) / "sms", knobs)
        ledger = Ledger(Path(tmp) / "ledger.duckdb")
        ledger.migrate()
        batch = on_issue_intents(args.count, "S", requested_by="bench")
        started = time.perf_counter()
        outcomes: Counter[str] = Counter()
        try:
            for run in range(1, args.runs + 1):

                async def go() -> Counter[str]:
                    async with httpx.AsyncClient() as client:
                        gateway = TwilioSmsGateway(
                            client, url, ACCOUNT_SID, TOKEN, "Courier", timeout_s=1.0
                        )
                        sender = Sender(
                            gateway, ledger, RetryPolicy(), concurrency=16, settle_s=0.2
                        )
                        return (await sender.send_all(batch)).outcomes

                result = asyncio.run(go())
                print(f"run {run}: {dict(result)}")
                outcomes.update(result)
                if not result.get("retry") and not result.get("unknown"):
                    break
            stats = httpx.get(f"{url}/_sandbox/stats").json()
            accepted = httpx.get(f"{url}/_sandbox/messages").json()["messages"]
        finally:
            process.terminate()
        with ledger.connect() as con:
            charged = sorted(
                r[0] for r in con.execute("SELECT provider_sid FROM sms_charges").fetchall()
            )
    elapsed = time.perf_counter() - started
    per_body = Counter(m["body"] for m in accepted)
    injected = {
        k: v
        for k, v in stats.items()
        if k in ("create_calls", "failed_injected", "lost_responses", "rate_limited", "accepted")
    }
    print(f"{args.count} intents in {elapsed:.1f} s; gateway: {injected}")
    duplicates = sum(1 for n in per_body.values() if n > 1)
    equal = charged == sorted(m["sid"] for m in accepted)
    print(
        f"accepted at the gateway: {len(accepted)}; texted twice: {duplicates}; "
        f"ledger charges equal the gateway's record: {equal}"
    )
    if duplicates or not equal or len(accepted) != args.count:
        raise SystemExit("FAILED")
    print("OK")


if __name__ == "__main__":
    main()
