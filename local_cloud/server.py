"""Run the server: uvicorn with the connection guard, our access log, and enough descriptors.

See README.md in this package for the HTTP API and the options.
"""
from __future__ import annotations

import logging
import os
import resource
import socket
from pathlib import Path

from .app import create_app
from .guard import guarded_protocol
from .settings import ServerSettings
from .store import Store

log = logging.getLogger("local_cloud")
SPARE_FDS = 256  # registry, logs, listening socket, threads' files, headroom
FDS_PER_CONNECTION = 2  # the socket and the file it uploads into or downloads from


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so that port 0 works and the real port is known."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def connection_cap(wanted: int) -> int:
    """Raise the soft descriptor limit as far as needed (up to the hard one); fit the cap under it.

    Running out of descriptors fails every request, so the cap is lowered rather than risked.
    """
    need = wanted * FDS_PER_CONNECTION + SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    fits = wanted if soft == resource.RLIM_INFINITY else (soft - SPARE_FDS) // FDS_PER_CONNECTION
    if fits < wanted:
        log.warning("only %d descriptors allowed (LimitNOFILE / ulimit -n): serving at most %d connections "
                    "instead of %d", soft, fits, wanted)
    return max(1, min(wanted, fits))


def serve(settings: ServerSettings, *, port_file: str | None = None) -> None:
    """Run the server until SIGINT/SIGTERM."""
    import uvicorn

    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    store = Store(settings)
    store.open()  # before listening: a folder we must not serve fails with a plain message
    cap = connection_cap(settings.max_connections)
    sockets = [bind(*settings.api_address)]
    if settings.public_address is not None:
        sockets.append(bind(*settings.public_address))
    bound = [s.getsockname()[:2] for s in sockets]
    if port_file:  # one line per face: the API's port, then the public one's
        tmp = f"{port_file}.tmp"
        Path(tmp).write_text("".join(f"{port}\n" for _, port in bound))
        os.replace(tmp, port_file)
    if len(bound) == 1:
        log.info("serving %s on http://%s:%d (at most %d connections)", settings.folder, *bound[0], cap)
    else:
        log.info("serving %s: API on http://%s:%d, public pages only on http://%s:%d (at most %d connections)",
                 settings.folder, *bound[0], *bound[1], cap)
    config = uvicorn.Config(
        create_app(settings, store, bound), log_level=settings.log_level, root_path=settings.root_path,
        http=guarded_protocol(settings.header_timeout, settings.max_header_bytes, cap, settings.idle_timeout),
        limit_concurrency=cap + 1,  # the guard keeps at most `cap` open; one more is only told 503
        timeout_keep_alive=settings.keep_alive_timeout,
        access_log=False,  # ours (access.py) leaves out query strings and link ids
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        timeout_graceful_shutdown=5, server_header=False)
    uvicorn.Server(config).run(sockets=sockets)
