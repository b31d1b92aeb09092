"""File-name rules shared by the server and the client.

Names are only ever stored in the registry (files on disk are named by their random id), but a
name still ends up in Content-Disposition, on the share page and in whatever folder a user
downloads into, so only plain file names are accepted: nothing that is, decodes to, normalises to
or looks like a path, and nothing invisible that changes how the name reads.
"""
from __future__ import annotations

import unicodedata
from urllib.parse import unquote

MAX_NAME_BYTES = 255  # the usual file-system limit for one path component

# Unicode categories refused anywhere in a name: controls (C0, DEL, C1), format characters (bidi
# overrides and isolates, zero-width joiners, BOM), surrogates, private use, unassigned, and the
# line/paragraph separators.
REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Slash look-alikes that NFKC leaves alone: fraction and division slash, set minus, reverse
# solidus operator, big (reverse) solidus, box-drawing and mathematical diagonals, and the
# combining solidus overlays. (Letters of real scripts that happen to be slanted stay allowed.)
SLASH_LIKE = set("\u2044\u2215\u2216\u29f5\u29f8\u29f9\u2571\u2572\u27cb\u27cd\u0337\u0338\u20e5")
PATH_CHARS = set("./\\")


def _plain_problem(candidate: str) -> str | None:
    if candidate in (".", ".."):
        return "name must not be '.' or '..'"
    if "/" in candidate or "\\" in candidate:
        return "name must not contain a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in candidate):
        return "name must not contain control characters"
    return None


def _unicode_problem(name: str) -> str | None:
    for c in name:
        category = unicodedata.category(c)
        if category in REFUSED_CATEGORIES:
            return (f"name must not contain U+{ord(c):04X} ({unicodedata.name(c, category)}): "
                    "control, format (e.g. bidi override), unassigned or separator character")
        if c in SLASH_LIKE:
            return f"name must not contain U+{ord(c):04X}, which looks like a path separator"
        if c not in PATH_CHARS and PATH_CHARS & set(unicodedata.normalize("NFKC", c)):
            return f"name must not contain U+{ord(c):04X}, which normalises to a dot or a path separator"
    return None


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
        problem = _plain_problem(candidate) or _unicode_problem(candidate)
        if problem:
            return problem
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "name must be valid UTF-8"
    return None
