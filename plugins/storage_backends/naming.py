"""Remote file names: stable per archive, so a retried upload overwrites instead of duplicating."""
from __future__ import annotations

import re
import unicodedata

_SIMULATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# What `remote_name` produces; listings keep only these so retention never touches other files.
REMOTE_NAME = re.compile(r"^[a-z0-9-]+_[A-Za-z0-9][A-Za-z0-9._-]{0,127}_[0-9a-f]{12}\.zip$")
SLUG_MAX = 60


def slugify(title: str) -> str:
    """Lower-case ASCII words joined by '-', so the name is safe on every service and shell."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "simulation"


def remote_name(title: str, simulation_id: str, sha256: str) -> str:
    """`<slug of title>_<simulation_id>_<first 12 of sha256>.zip` for one archive."""
    if not _SIMULATION_ID.match(simulation_id or ""):
        raise ValueError(f"simulation_id {simulation_id!r} does not match {_SIMULATION_ID.pattern}")
    digest = (sha256 or "").lower()
    if not _SHA256.match(digest):
        raise ValueError("sha256 must be 64 hex digits")
    return f"{slugify(title or '')}_{simulation_id}_{digest[:12]}.zip"


def is_remote_name(name: str) -> bool:
    """True for names this project gives its uploads."""
    return bool(REMOTE_NAME.match(name))
