"""File-name rules shared by the server and the client.

Names are only ever stored in the registry (files on disk are named by their random id), but a
name still ends up in Content-Disposition and in whatever folder a user downloads into, so only
plain file names are accepted.
"""
from __future__ import annotations

from urllib.parse import unquote

MAX_NAME_BYTES = 255  # the usual file-system limit for one path component


def name_problem(name: object) -> str | None:
    """Return why `name` is not a plain file name, or None when it is acceptable."""
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"name longer than {MAX_NAME_BYTES} bytes"
    if name != name.strip():
        return "name must not start or end with white space"
    # A name that only becomes a path after one more round of URL decoding is refused as well:
    # the link is opened by browsers and scripts that may decode it again.
    for candidate in {name, unquote(name)}:
        if candidate in (".", ".."):
            return "name must not be '.' or '..'"
        if "/" in candidate or "\\" in candidate:
            return "name must not contain a path separator"
        if any(ord(c) < 32 or ord(c) == 127 for c in candidate):
            return "name must not contain control characters"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name must be valid UTF-8"
    return None
