"""One result file into the sink, whatever its kind (text .vec/.sca, SQLite). A file that cannot be
read is rolled back out of the sink and becomes a Problem that skips it, so the other files of the folder
are still read; a file read with something skipped (a cut-off last line) carries its Problems."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import Problem, ResultsError
from .scafile import ScaReader
from .sqlitefile import SqliteReader, is_sqlite
from .store import Sink
from .vecfile import VecReader


@dataclass
class ReadOutcome:
    info: dict | None  # the file's summary for parsed.json; None when it was skipped as corrupt
    problems: list[Problem] = field(default_factory=list)


def read_result_file(path: Path, kind: str, sink: Sink, select, vci: Path | None = None,
                     progress=None) -> ReadOutcome:
    """Read one .vec (kind "vec", with its .vci if given) or .sca (kind "sca") into the sink; each
    problem is also told to progress as one line."""
    cp = sink.checkpoint()
    size = 0
    try:
        size = path.stat().st_size
        if size == 0:
            raise ResultsError("empty result file", path=path)
        if is_sqlite(path):
            info = SqliteReader(path, sink, select, progress).read()
        elif kind == "vec":
            info = VecReader(path, sink, select, progress).read(vci)
        else:
            info = ScaReader(path, sink, select).read()
        problems = info.pop("problems")
        info["kind"] = kind
        res = ReadOutcome(info, problems)
    except (ResultsError, OSError) as e:
        sink.rollback(cp)
        if isinstance(e, OSError):
            e = ResultsError(f"cannot read ({e.strerror or e.__class__.__name__})", path=path)
        res = ReadOutcome(None, [Problem.from_error(e, path, size)])
    if progress:
        for p in res.problems:
            progress("problem: " + p.describe())
    return res


def nothing_readable(problems: list[Problem]) -> ResultsError:
    """The error when no result file of a folder could be read: the first file's own error."""
    first = problems[0]
    more = f" ({len(problems) - 1} other result files could not be read either)" if len(problems) > 1 else ""
    return ResultsError(first.message + more, path=first.path, line=first.line)
