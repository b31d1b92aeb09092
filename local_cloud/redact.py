"""What the server may write into its logs: link ids are capabilities, query strings may hold keys.

A link id is logged only as its tag, `#` + the first 10 hex digits of its SHA-256: enough to
match a log line with `local_cloud list --tags` or /api/files, useless for opening the link.
"""
from __future__ import annotations

import hashlib
import re

# Paths whose last segment is a file id: the share link and the file management API.
_ID_PATHS = re.compile(r"^(?P<head>.*?/(?:f|api/files))/(?P<id>[A-Za-z0-9_-]{16,})(?P<tail>/[^/]*)?$")


def link_tag(file_id: str) -> str:
    return "#" + hashlib.sha256(file_id.encode()).hexdigest()[:10]


def safe_path(path: str) -> str:
    """A request path fit for the access log: file ids tagged (the query string never gets here)."""
    m = _ID_PATHS.match(path)
    if not m:
        return path
    return f"{m['head']}/{link_tag(m['id'])}{m['tail'] or ''}"
