"""How close does sending get to the configured SMS rate, and how many 429s does it cause?

Runs the real sender (outbox in a DuckDB file, httpx, retry policy) against the sandbox
gateway on loopback, whose own rate limit equals the configured rate and which answers each
call after a latency. Two runs in one go: paced (Courier's token bucket at the configured
rate) and unpaced (the same concurrency, no pacing), so the comparison is on one machine.

    .venv/bin/python bench/sms_rate_bench.py [--rate 50] [--seconds 20] [--latency-ms 80]

Target: paced throughput >= 95% of the configured rate with < 1% of requests answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import uvicorn

from courier.adapters.sms import TwilioSmsGateway
from courier.ledger import Ledger
from courier.ratelimit import pacer
from courier.retry import RetryPolicy
from courier.sending import Sender
from sandbox.sms_gateway import create_sms_app
from tests.support.factories import on_issue_intents

ACCOUNT_SID = "AC" + "0" * 32
TOKEN = "bench-token"


def serve_gateway(state_dir: str, port: int, knobs: dict) -> None:
    """The sandbox gateway in its own process, as it would be: it must not share our core."""
    uvicorn.run(
        create_sms_app(Path(state_dir), ACCOUNT_SID, TOKEN, knobs),
        host="127.0.0.1",
        port=port,
        log_level="error",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gateway(state_dir: Path, knobs: dict) -> tuple[str, BaseProcess]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_gateway, args=(str(state_dir), port, knobs), daemon=True
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/_sandbox/health", timeout=1)
            return url, process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("sandbox gateway did not start")


def run(rate: float, count: int, latency_ms: float, concurrency: int, paced: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        url, process = start_gateway(
            Path(tmp) / "sms",
            {"latency_ms": latency_ms, "rate_limit_per_s": rate, "delivery_delay_s": 0},
        )
        stop = process.terminate
        ledger = Ledger(Path(tmp) / "ledger.duckdb")
        ledger.migrate()
        try:

            async def go() -> tuple[float, dict]:
                async with httpx.AsyncClient() as client:
                    gateway = TwilioSmsGateway(client, url, ACCOUNT_SID, TOKEN, "Courier")
                    sender = Sender(
                        gateway,
                        ledger,
                        RetryPolicy(attempts=10, total_timeout_s=120),
                        concurrency=concurrency,
                        limiter=pacer(rate) if paced else None,
                    )
                    started = time.perf_counter()
                    report = await sender.send_all(
                        on_issue_intents(count, "P" if paced else "U", requested_by="bench")
                    )
                    return time.perf_counter() - started, dict(report.outcomes)

            elapsed, outcomes = asyncio.run(go())
            stats = httpx.get(f"{url}/_sandbox/stats").json()
        finally:
            stop()
    accepted = outcomes.get("accepted", 0)
    calls = stats.get("create_calls", accepted)
    limited = stats.get("rate_limited", 0)
    return {
        "elapsed": elapsed,
        "accepted": accepted,
        "calls": calls,
        "limited": limited,
        "rate": accepted / elapsed,
    }


def main() -> None:
    logging.getLogger("stamina").setLevel(logging.ERROR)  # retries are counted, not logged
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="configured SMS per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--latency-ms", type=float, default=80.0, help="gateway latency")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    print(
        f"configured rate {args.rate:g}/s, {count} SMS per run, gateway latency "
        f"{args.latency_ms:g} ms, concurrency {args.concurrency}"
    )
    for paced in (True, False):
        r = run(args.rate, count, args.latency_ms, args.concurrency, paced)
        share = r["limited"] / r["calls"] if r["calls"] else 0.0
        print(
            f"{'paced  ' if paced else 'unpaced'}: {r['accepted']} accepted in "
            f"{r['elapsed']:.1f} s = {r['rate']:.1f}/s, ratio to configured "
            f"{r['rate'] / args.rate:.3f}; 429s {r['limited']}/{r['calls']} = {share:.2%}"
        )


if __name__ == "__main__":
    main()
