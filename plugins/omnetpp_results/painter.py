"""Drawing beside the export: child processes render the PNGs (graphs.py's drawing and the PNG
encoding, ~10 ms a chart) on the other cores while the caller goes on reading vectors.

A plain subprocess speaking pickle over its pipes, not multiprocessing: Airflow and Celery task
processes may be daemonic, and daemonic processes may not have multiprocessing children.

A chart the child cannot draw is answered with its error and the child goes on (the caller
turns it into a Problem); only a child that dies stops the export, with the child's own error
(its last words on stderr, or the signal that killed it), never the broken pipe that follows.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from .charts import Chart
from .errors import ResultsError

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
#: the environment the drawing process gets: where to find Python, fonts' cache, temp files
PASSED_ON = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT"}


#: drawing processes at most: one per core (each costs its imports, ~0.2 s, and ~60 MB)
MAX_PAINTERS = max(1, min(os.cpu_count() or 1, 4))
#: charts waiting in every drawing process before another one is started
BACKLOG = 12
#: charts that pay for a drawing process of their own from the start (its imports cost ~0.35 s,
#: the drawing of ~35 charts)
CHARTS_PER_PAINTER = 40


class _Child:
    """One drawing process: what was sent to it, what it answered, and how it ended."""

    def __init__(self, pngs: dict, failed: dict):
        self.pngs, self.failed = pngs, failed
        self.error: str | None = None  # its fatal error
        self.sent = self.answered = 0
        env = {k: v for k, v in os.environ.items() if k in PASSED_ON}  # no credentials: it only draws
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "omnetpp_results.painter"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        # charts are pickled by the caller and written by a thread: a chart's pickle is often larger
        # than a pipe holds, and a blocking write would stall the caller while the child draws
        # instead of letting it go on reading vectors; pickling here keeps the thread from
        # holding the GIL the caller needs
        self.outbox: queue.Queue = queue.Queue(maxsize=2 * BACKLOG)
        self.broken = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _read(self) -> None:
        try:
            while True:
                key, png, error = pickle.load(self.proc.stdout)
                self.answered += 1
                if error and key is None:
                    self.error = error
                elif error:
                    self.failed[key] = error
                elif png is not None:
                    self.pngs[key] = png
        except (EOFError, OSError, pickle.UnpicklingError):
            pass  # the child is gone; finish() says why

    def _write(self) -> None:
        """Sends what is put in the outbox until None; once the child is gone, only empties it."""
        while (message := self.outbox.get()) is not None:
            if self.broken:
                continue
            try:
                self.proc.stdin.write(message)  # bytes: the write lets go of the GIL throughout
                self.proc.stdin.flush()
            except (OSError, ValueError):  # the child is gone (finish() says why); never stop taking
                self.broken = True         # messages, or a full outbox would hold the caller for good
        try:
            self.proc.stdin.close()  # flushes what is buffered: fails when the child is gone
        except (OSError, ValueError):
            self.broken = True

    def send(self, message) -> bool:
        """False when the child is gone (its error is then finish()'s)."""
        if self.broken:
            return False
        self.outbox.put(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        self.sent += 1
        return True

    def finish(self) -> None:
        self.outbox.put(None)
        self.writer.join()
        self.reader.join()
        code = self.proc.wait()
        if code != 0 or self.error:
            raise ResultsError(f"the drawing process failed ({_exit(code)}): {self.error or self._log()}")

    def _log(self) -> str:
        if self.stderr.closed:
            return "no output"
        self.stderr.seek(0)
        log = self.stderr.read().decode("utf-8", "replace").strip()
        self.stderr.close()
        return log[-2000:] or "no output"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.writer.is_alive():  # its write fails now; it empties the outbox and ends
            self.outbox.put(None)


class Painter:
    """Submit charts and per-vector graphs as they become ready; finish() waits for all of them
    and returns the charts' PNGs by key (per-vector graphs are written to their paths). The work
    goes to the least busy of up to MAX_PAINTERS drawing processes, another one started when
    every one is drawing and has BACKLOG charts waiting (a small report needs only one: each
    process costs its imports)."""

    def __init__(self, workers: int = MAX_PAINTERS):
        self.workers = max(1, workers)
        self.children: list[_Child] = []
        self.pngs: dict = {}
        self.failed: dict = {}  # key -> why the child could not draw it (one line)

    def start(self, charts: int = 0) -> None:
        """Starts drawing processes now, while the caller reads: one, or one per CHARTS_PER_PAINTER
        charts it expects (up to the limit), so that a large report's drawing is spread from its
        first chart on instead of once the first process has fallen behind."""
        while len(self.children) < min(self.workers, max(1, charts // CHARTS_PER_PAINTER)):
            self._spawn()

    def _spawn(self) -> None:
        self.children.append(_Child(self.pngs, self.failed))

    def _send(self, message) -> None:
        if not self.children:
            self.start()
        child = min(self.children, key=lambda c: c.sent - c.answered)
        if child.sent - child.answered >= BACKLOG and len(self.children) < self.workers \
                and all(c.answered for c in self.children):  # drawing already, and still behind
            self._spawn()
            child = self.children[-1]
        if not child.send(message):
            self.finish()  # raises with the child's own error

    def chart(self, key, chart: Chart) -> None:
        self._send(("chart", key, chart))

    def vector(self, path: Path, vec: dict, points: tuple, axis: str) -> None:
        meta = {k: vec[k] for k in ("module", "name", "count", "attrs")}
        self._send(("vector", str(path), (meta, *points, axis)))

    def finish(self) -> dict:
        errors = []
        for child in self.children:
            try:
                child.finish()
            except ResultsError as e:
                errors.append(e)
        if errors:
            raise errors[0]
        return self.pngs

    def close(self) -> None:
        """Stop the children whatever happened (the caller's error is the one to report)."""
        for child in self.children:
            child.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def serve() -> None:
    """The child: draw what arrives on stdin until it closes; answer (key, png, error) on stdout."""
    from .graphs import chart_png, vector_png

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    try:
        while True:
            try:
                kind, key, payload = pickle.load(sys.stdin.buffer)
            except EOFError:
                break
            if kind == "chart":
                answer = _drawn(key, lambda: chart_png(payload))
            else:
                answer = _drawn(key, lambda: _write(key, vector_png(*payload)))
            pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        pickle.dump((None, None, traceback.format_exc()), out)
        out.flush()
        sys.exit(1)


def _drawn(key, draw) -> tuple:
    """(key, png, None), or (key, None, why) when this one chart cannot be drawn (data that
    cannot be placed on an axis, such as values spanning more than the largest double): the next
    charts are still drawn."""
    try:
        return key, draw(), None
    except (ValueError, ArithmeticError, RuntimeError, TypeError, IndexError, OverflowError) as e:
        return key, None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no message'}"[:300]


def _write(path: str, png: bytes) -> None:
    Path(path).write_bytes(png)


if __name__ == "__main__":
    serve()
