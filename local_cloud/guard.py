"""Connections that send no request are closed: header timeout, header size cap, connection cap.

uvicorn bounds a keep-alive connection between requests (`timeout_keep_alive`) and the number of
requests running (`limit_concurrency`, answered 503), and with h11 the header size
(`h11_max_incomplete_event_size`), but nothing bounds a connection that never finishes its
request header, or one that sends nothing at all. Those are what a slowloris attack or a
port scanner leaves behind, each holding a file descriptor. This protocol, uvicorn's httptools one
plus three rules, closes them:

- a connection must complete each request header within `header_timeout` seconds of opening
  (or of the previous response);
- the request line and headers must fit in `max_header_bytes` (else 431);
- at most `max_connections` are open; a connection beyond that makes room by closing the one
  that has waited longest without sending a complete header. Only when every connection is in
  a request does the newcomer get uvicorn's 503 (limit_concurrency = max_connections + 1);
- a connection we close is aborted if its peer has not taken the unsent data `linger` seconds
  later (asyncio would otherwise wait for a peer that never reads, descriptor and all).

Closures are logged as one summary line per LOG_EVERY seconds, so a flood cannot flood the log.
"""
from __future__ import annotations

import logging
import socket
import struct
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("local_cloud")
LOG_EVERY = 5.0


class _Closures:
    """Counts connections closed by the guard and logs them in summaries."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.last_log = 0.0

    def note(self, reason: str, client) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self.last_log >= LOG_EVERY:
            self.last_log = now
            summary = ", ".join(f"{n} {why}" for why, n in self.counts.items())
            log.warning("closed connection(s) that sent no complete request: %s (latest from %s)",
                        summary, client[0] if client else "?")
            self.counts.clear()


class _Lingering:
    """The transport uvicorn sees: close() flushes as usual, then aborts after `linger` seconds."""

    def __init__(self, transport, loop, linger: float):
        self._transport, self._loop, self._linger = transport, loop, linger

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()
            self._loop.call_later(self._linger, self._reset)

    def _reset(self) -> None:
        """Drop what the peer did not take and send RST (SO_LINGER 0): nothing waits for it."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()

    def __getattr__(self, name):
        return getattr(self._transport, name)


@dataclass
class _Limits:
    """One server's limits and the connections still waiting for a header (oldest first)."""

    header_timeout: float
    max_header_bytes: int
    max_connections: int
    linger: float
    waiting: dict = field(default_factory=dict)  # connection -> None, in the order they started waiting
    closures: _Closures = field(default_factory=_Closures)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the rules above; `limits` is bound by guarded_protocol()."""

    limits: _Limits

    def connection_made(self, transport) -> None:
        super().connection_made(_Lingering(transport, self.loop, self.limits.linger))
        self._header_timer = None
        self._message_done = True
        self._await_header()
        if len(self.connections) > self.limits.max_connections:
            oldest = next(iter(self.limits.waiting))
            if oldest is not self:
                oldest._close_for("evicted to make room for a new connection")

    def _await_header(self) -> None:
        self.limits.waiting.pop(self, None)
        self.limits.waiting[self] = None
        self._header_bytes, self._tail = 0, b""
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._close_for,
                                                  f"with no complete header within {self.limits.header_timeout:g} s")

    def _header_done(self) -> None:
        self.limits.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _close_for(self, reason: str) -> None:
        self._header_done()
        if not self.transport.is_closing():
            self.limits.closures.note(reason, self.client)
            self.transport.close()
        # Count it out now, not when asyncio reports it lost: uvicorn's 503 rule counts this set.
        self.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        # Counted before parsing: a chunk that completes an oversized header must not reach the app.
        if self in self.limits.waiting and not self.transport.is_closing():
            seen = self._tail + data  # the blank line may straddle two chunks
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = seen[-3:]
            if self._header_bytes > self.limits.max_header_bytes:
                self._header_done()
                self.limits.closures.note(f"with a header over {self.limits.max_header_bytes} bytes", self.client)
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                     b"content-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._message_done = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._header_done()
        super().on_headers_complete()

    # The next request's header is awaited once this request's body has arrived AND its
    # response is sent (either may come first: an early answer leaves the body streaming).
    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._message_done = True
        if self.cycle is not None and self.cycle.response_complete:
            self._next_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._message_done:
            self._next_request()

    def _next_request(self) -> None:
        idle = not self.pipeline and (self.cycle is None or self.cycle.response_complete)
        if idle and not self.transport.is_closing():
            self._await_header()

    def connection_lost(self, exc) -> None:
        self._header_done()
        super().connection_lost(exc)


def guarded_protocol(header_timeout: float, max_header_bytes: int, max_connections: int,
                     linger: float) -> type:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    limits = _Limits(header_timeout, max_header_bytes, max_connections, linger)
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})
