"""Run an ASGI app on a loopback port in a background thread (for tests and tools).

The listening socket is bound *before* the thread starts, so the port is known at once
(``port=0`` picks a free one) and nothing else can grab it; the call returns only after
uvicorn reports it is serving (or raises if it failed to start).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

StopFn = Callable[[], None]


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket for ``host:port``; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def base_url_for(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def make_config(
    app: Any, *, log_level: str = "warning", access_log: bool = False
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="auto",
        # Requests deliberately held open (latency knobs) must not block a stop for long.
        timeout_graceful_shutdown=2,
    )


def run_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 15.0,
    log_level: str = "warning",
) -> tuple[str, StopFn]:
    """Serve ``app`` on ``host:port`` in a daemon thread; return ``(base_url, stop)``.

    ``stop()`` asks uvicorn to shut down gracefully and waits for the thread; calling it
    twice is harmless.
    """
    sock = bind_socket(host, port)
    base_url = base_url_for(sock)
    server = uvicorn.Server(make_config(app, log_level=log_level))
    failure: list[BaseException] = []

    def target() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed lifespan startup, too
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=target, name=f"sandbox-server {base_url}", daemon=True)
    thread.start()

    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"server for {base_url} failed to start: {failure or 'exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            raise RuntimeError(f"server for {base_url} did not start within {startup_timeout}s")
        time.sleep(0.005)

    def stop() -> None:
        if not thread.is_alive():
            return
        server.should_exit = True
        thread.join(10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)

    return base_url, stop


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """``with serving(app) as base_url: ...`` — ``run_in_thread`` as a context manager."""
    base_url, stop = run_in_thread(app, host, port)
    try:
        yield base_url
    finally:
        stop()
