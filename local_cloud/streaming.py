"""Request bodies to disk with a running SHA-256, in bounded memory, and the hashing of files."""
from __future__ import annotations

import asyncio
import hashlib

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from .errors import Refusal

BUFFER = 1 << 20  # bytes handed to a worker thread per write+hash; bounds memory per upload


class Dropped(Exception):
    """The client went away (or stalled) before the body was complete; args[0] = bytes written."""


def hash_file(path, limit: int | None = None):
    """(sha256 object, bytes read) of a file, or of its first `limit` bytes."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while block := f.read(BUFFER if limit is None else min(BUFFER, limit - n)):
            h.update(block)
            n += len(block)
    return h, n


def _write_and_hash(fh, hasher, chunks: list) -> int:
    n = 0
    for c in chunks:  # the chunks as received: no joining copy
        fh.write(c)
        hasher.update(c)
        n += len(c)
    return n


async def pump(request: Request, fh, hasher, limit: int, idle_timeout: float) -> int:
    """Stream the request body into fh and hasher with bounded memory; return bytes written.

    Network receive and disk write+hash overlap: one buffer fills on the event loop while the
    previous one is written by a worker thread. Whatever arrived before a drop is still written
    (a resumable upload keeps it). Raises Dropped after writing when the body ended early, and
    Refusal(400) when it is longer than announced.
    """
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    last = [loop.time()]
    stalled = [False]

    async def watchdog():
        while True:
            await asyncio.sleep(min(5.0, idle_timeout / 2))
            if loop.time() - last[0] > idle_timeout:
                stalled[0] = True
                me.cancel()
                return

    dog = asyncio.create_task(watchdog())
    written = 0
    buf: list = []
    buffered = 0
    pending = None
    dropped = False
    try:
        async for chunk in request.stream():
            last[0] = loop.time()
            if written + buffered + len(chunk) > limit:
                raise Refusal(400, "body longer than announced")
            buf.append(chunk)
            buffered += len(chunk)
            if buffered >= BUFFER:
                if pending is not None:
                    written += await pending
                data, buf, buffered = buf, [], 0
                pending = asyncio.ensure_future(anyio.to_thread.run_sync(_write_and_hash, fh, hasher, data))
    except ClientDisconnect:
        dropped = True
    except asyncio.CancelledError:
        if not stalled[0]:
            raise
        me.uncancel()
        dropped = True
    finally:
        dog.cancel()
        if pending is not None:
            written += await pending
    if buf:
        written += await anyio.to_thread.run_sync(_write_and_hash, fh, hasher, buf)
    if dropped or written < limit:
        raise Dropped(written)
    return written
