"""Lexical rules of OMNeT++ text result files (.vec/.sca/.vci), shared by the readers."""
from __future__ import annotations

import math

from .errors import ResultsError

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def tokenize(line: str, path=None, lineno: int | None = None) -> list[str]:
    """Split one line into tokens; quoted tokens may hold blanks and C-style escapes.

    Unquoted lines (nearly all) take the fast str.split path.
    """
    if '"' not in line and "\\" not in line:
        return line.split()
    tokens: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r":
            i += 1
            continue
        if c == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise ResultsError("unterminated quoted string", path=path, line=lineno)
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n:
                    e = line[i + 1]
                    if e == "x" and i + 3 < n + 1:
                        try:
                            buf.append(chr(int(line[i + 2:i + 4], 16)))
                            i += 4
                            continue
                        except ValueError:
                            pass
                    buf.append(_ESCAPES.get(e, e))
                    i += 2
                    continue
                buf.append(c)
                i += 1
            tokens.append("".join(buf))
        else:
            j = i
            while j < n and line[j] not in " \t\r":
                j += 1
            tokens.append(line[i:j])
            i = j
    return tokens


def parse_number(tok: str, path=None, lineno: int | None = None) -> float:
    """A number as OMNeT++ prints it (%.14g, nan, -nan, inf, -inf)."""
    try:
        return float(tok)
    except ValueError:
        raise ResultsError(f"not a number: {tok!r}", path=path, line=lineno) from None


def fmt(x) -> str:
    """Full-precision text of a computed double (shortest repr that round-trips); nan/inf as OMNeT++."""
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return repr(x)
