"""Run an ASGI app on a loopback socket in a background thread, optionally over TLS."""
from __future__ import annotations

import socket
import threading
from types import TracebackType

import uvicorn


class LoopbackServer:
    """The socket is bound and listening before the thread starts, so clients can connect at
    once: their connections wait in the backlog until uvicorn accepts them (no readiness polling)."""

    def __init__(self, app, *, certfile: str | None = None, keyfile: str | None = None):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]
        self.scheme = "https" if certfile else "http"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off",
            ssl_certfile=certfile, ssl_keyfile=keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"emulator-{self.port}", daemon=True,
        )

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        # Idle keep-alive TLS connections of client pools never finish their close handshake;
        # a test server has nothing in flight worth waiting for.
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def take_fault(faults, lock, route: str):
    """Pop the first injected fault for `route`: each fault hits exactly one request."""
    with lock:
        for fault in faults:
            if fault.route == route:
                faults.remove(fault)
                return fault
    return None
