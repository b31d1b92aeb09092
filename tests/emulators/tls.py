"""A throw-away CA (trustme) and the CA bundle that makes `requests` trust it for one test session."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import certifi
import trustme


class TestCA:
    """Issues a localhost/127.0.0.1 certificate and writes PEM files under `folder`."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.certfile = str(folder / "server.pem")
        self.keyfile = str(folder / "server.key")
        cert.cert_chain_pems[0].write_to_path(self.certfile)
        for extra in cert.cert_chain_pems[1:]:
            with open(self.certfile, "ab") as f:
                f.write(extra.bytes())
        cert.private_key_pem.write_to_path(self.keyfile)
        # The usual roots plus ours, so anything else the process does over TLS keeps working.
        self.bundle = str(folder / "ca-bundle.pem")
        base = os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where()
        Path(self.bundle).write_bytes(Path(base).read_bytes() + b"\n" + self.ca.cert_pem.bytes())

    @contextlib.contextmanager
    def trusted_by_requests(self) -> Iterator[None]:
        """Point requests' standard REQUESTS_CA_BUNDLE at the bundle while the context lasts."""
        saved = os.environ.get("REQUESTS_CA_BUNDLE")
        os.environ["REQUESTS_CA_BUNDLE"] = self.bundle
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("REQUESTS_CA_BUNDLE", None)
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = saved
