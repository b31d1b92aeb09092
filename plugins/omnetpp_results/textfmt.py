"""Lexical rules of OMNeT++ text result files (.vec/.sca/.vci), shared by the readers.

One grammar for numbers on every path (data/vecparse.c implements the same one in C):
  [+-]? ( digits [. digits*] | . digits ) ( [eE] [+-]? digits )?
  [+-]? nan | [+-]? inf                      (any letter case: glibc, the manual's -INF)
  [+-]? 1.#INF | 1.#IND | 1.#QNAN | 1.#SNAN, optionally followed by digits (1.#INF00): the
                                             Windows C runtime's spellings (OMNeT++ 4 on Windows)
Nothing else: no hex (0x10, 0x1p3), no `infinity`, no `nan(...)`, no `_`, no blanks. Tokens are
separated by spaces and TABs only; a line ends with LF or CRLF.
"""
from __future__ import annotations

import math
import re

from .errors import ResultsError

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def plain(s) -> str:
    """Text from result files shown as data: one line, control characters (a line break in a
    quoted module name, a NUL in an attribute) written as \\xHH escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(s))


#: longest line accepted in a result file or index; OMNeT++'s longest lines (config and par
#: values) are far shorter, so a longer one is not a result file
MAX_LINE = 4 << 20
BOM = b"\xef\xbb\xbf"
#: largest vector id (the format's ids are C integers; OMNeT++ uses 0, 1, 2, ...)
MAX_ID = (1 << 63) - 1

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                     r"|[nN][aA][nN]|[iI][nN][fF]|1\.#(?:INF|IND|QNAN|SNAN)[0-9]*)")
_DIGITS = re.compile(r"[0-9]+")


def tokenize(line: str, path=None, lineno: int | None = None) -> list[str]:
    """Split one line (without its line end) into tokens; quoted tokens may hold blanks and
    C-style escapes. Unquoted lines (nearly all) take the fast split path."""
    if '"' not in line and "\\" not in line:
        return [t for t in line.replace("\t", " ").split(" ") if t]
    tokens: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t":
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
            while j < n and line[j] not in " \t":
                j += 1
            tokens.append(line[i:j])
            i = j
    return tokens


def parse_number(tok: str, path=None, lineno: int | None = None) -> float:
    """A number in the grammar above (as OMNeT++ prints it on any platform)."""
    if _NUMBER.fullmatch(tok) is None:
        raise ResultsError(f"not a number: {tok[:60]!r}", path=path, line=lineno)
    if "#" in tok:
        x = math.inf if "#INF" in tok else math.nan
        return -x if tok[0] == "-" else x
    return float(tok)


def number_text(tok: str, path=None, lineno: int | None = None) -> str:
    """A number token as kept in the outputs: as written, except the Windows spellings, which
    become OMNeT++'s usual inf/-inf/nan/-nan (what other tools read). Checks the grammar."""
    parse_number(tok, path, lineno)
    if "#" not in tok:
        return tok
    sign = "-" if tok[0] == "-" else ""
    return sign + ("inf" if "#INF" in tok else "nan")


def parse_id(tok: str, path=None, lineno: int | None = None, what: str = "vector id") -> int:
    """A vector id: decimal digits, at most MAX_ID (ids are integers; never read as doubles)."""
    if _DIGITS.fullmatch(tok) is None:
        raise ResultsError(f"{what} {tok[:40]!r} is not a non-negative integer", path=path, line=lineno)
    v = int(tok)
    if v > MAX_ID:
        raise ResultsError(f"{what} {tok[:40]} is too large (at most 2^63-1)", path=path, line=lineno)
    return v


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


def snippet(b: bytes | str, n: int = 40) -> str:
    """A short, printable quote of file content for a message (control bytes escaped)."""
    if isinstance(b, bytes):
        b = b.decode("utf-8", errors="replace")
    return ascii(b[:n])


class Chunks:
    """A file in pieces of about `size` bytes cut at line ends, a leading UTF-8 BOM removed: yields
    (buf, cut), the complete lines being buf[:cut]. A line longer than MAX_LINE raises too_long()
    (strict) or is dropped. Afterwards, `rest` holds an incomplete last line (no line end)."""

    def __init__(self, f, size: int, strict: bool = True, too_long=None):
        self.f, self.size, self.strict, self.too_long = f, size, strict, too_long
        self.rest = b""

    def __iter__(self):
        carry, first, skip = b"", True, False
        while True:
            data = self.f.read(self.size)
            if not data:
                break
            if first:
                first = False
                if data.startswith(BOM):
                    data = data[len(BOM):]
            if skip:  # the rest of a dropped over-long line
                i = data.find(b"\n")
                if i < 0:
                    continue
                data, skip = data[i + 1:], False
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n") + 1
            carry = buf[cut:]
            if len(carry) > MAX_LINE:
                if self.strict:
                    raise self.too_long()
                carry, skip = b"", True
            if cut:
                yield buf, cut
        self.rest = carry


class Lines:
    """The complete lines of a text file, streamed in bounded memory: (line number, text) without
    the line end (LF or CRLF) or a leading UTF-8 BOM.

    strict=True (result files): lines must be UTF-8 and at most MAX_LINE bytes, backslash-newline
    continues a line (as OMNeT++'s reader allows); anything else is a ResultsError naming the line.
    strict=False (logs): bad bytes are replaced and longer lines skipped.
    After the iteration, cut_bytes is the length of an incomplete last line (no line end), which
    is not yielded.
    """

    def __init__(self, f, path=None, strict: bool = True, chunk: int = 1 << 20, fast=None):
        self.f, self.path, self.strict, self.chunk = f, path, strict, chunk
        self.fast = fast  # fast(buf, pos, end) -> (where the lines it took in bulk end, how many)
        self.cut_bytes = 0
        self.lines = 0

    def _too_long(self, lineno):
        return ResultsError(f"line longer than {MAX_LINE >> 20} MB: not an OMNeT++ result file",
                            path=self.path, line=lineno)

    def _decode(self, raw: bytes, lineno: int) -> str:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not self.strict:
            return raw.decode("utf-8", errors="replace")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ResultsError("garbage bytes (not UTF-8 text)", path=self.path, line=lineno) from None

    def __iter__(self):
        chunks = Chunks(self.f, self.chunk, self.strict, lambda: self._too_long(self.lines + 1))
        pending, pending_at = None, 0  # a line continued with a backslash
        for buf, cut in chunks:
            for raw in self._parts(buf, cut, lambda: pending is None):
                self.lines += 1
                if len(raw) > MAX_LINE:
                    if self.strict:
                        raise self._too_long(self.lines)
                    continue
                text = self._decode(raw, self.lines)
                if self.strict and text.endswith("\\") and not text.endswith("\\\\"):
                    if pending is None:
                        pending, pending_at = "", self.lines
                    pending += text[:-1]
                    if len(pending) > MAX_LINE:
                        raise self._too_long(pending_at)
                    continue
                if pending is not None:
                    text, pending = pending + text, None
                    yield pending_at, text
                else:
                    yield self.lines, text
        if pending is not None:
            yield pending_at, pending
        self.cut_bytes = len(chunks.rest)

    def _parts(self, buf: bytes, cut: int, free):
        """The lines of buf[:cut] to read one by one; runs of lines that fast() takes in bulk
        (never inside a continued line, free() says) are only counted."""
        if self.fast is None:
            parts = buf.split(b"\n")
            parts.pop()
            yield from parts
            return
        pos = 0
        while pos < cut:
            if free():
                end, n = self.fast(buf, pos, cut)
                if end > pos:
                    self.lines += n
                    pos = end
                    continue
            nl = buf.index(b"\n", pos, cut)
            yield buf[pos:nl]
            pos = nl + 1
