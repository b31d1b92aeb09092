"""Drawing beside the export: a child process renders the PNGs (matplotlib's import, the Agg draw,
the PNG encoding) on the second core while the caller goes on reading vectors.

A plain subprocess speaking pickle over its pipes, not multiprocessing: Airflow and Celery task
processes may be daemonic, and daemonic processes may not have multiprocessing children.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from .charts import Chart

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
#: the environment the drawing process gets: where to find Python, fonts' cache, temp files
PASSED_ON = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "VIRTUAL_ENV",
             "SYSTEMROOT"}


class Painter:
    """Submit charts and per-vector graphs as they become ready; finish() waits for all of them
    and returns the charts' PNGs by key (per-vector graphs are written to their paths)."""

    def __init__(self):
        self.proc = None
        self.pngs: dict = {}
        self.error: str | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ON}  # no credentials: it only draws
        env.update(MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")])))
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "omnetpp_results.painter"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                key, png, error = pickle.load(self.proc.stdout)
                if error:
                    self.error = error
                elif png is not None:
                    self.pngs[key] = png
        except EOFError:
            pass

    def _send(self, message) -> None:
        if self.proc is None:
            self.start()
        try:
            pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.finish()  # raises with the child's own error

    def chart(self, key, chart: Chart) -> None:
        self._send(("chart", key, chart))

    def vector(self, path: Path, vec: dict, points: tuple, axis: str) -> None:
        meta = {k: vec[k] for k in ("module", "name", "count", "attrs")}
        self._send(("vector", str(path), (meta, *points, axis)))

    def finish(self) -> dict:
        if self.proc is None:
            return {}
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.reader.join()
        code = self.proc.wait()
        self.stderr.seek(0)
        log = self.stderr.read().decode("utf-8", "replace").strip()
        self.stderr.close()
        if code != 0 or self.error:
            raise RuntimeError(f"the drawing process failed (exit {code}): {self.error or log[-2000:]}")
        return self.pngs

    def close(self) -> None:
        """Stop the child whatever happened (the caller's error is the one to report)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve() -> None:
    """The child: draw what arrives on stdin until it closes; answer (key, png, error) on stdout."""
    from .graphs import ChartPainter, VectorPlotter

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    charts = vectors = None
    try:
        while True:
            try:
                kind, key, payload = pickle.load(sys.stdin.buffer)
            except EOFError:
                break
            if kind == "chart":
                charts = charts or ChartPainter()
                answer = (key, charts.png(payload), None)
            else:
                vectors = vectors or VectorPlotter()
                Path(key).write_bytes(vectors.png(*payload))
                answer = (key, None, None)
            pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it
        pickle.dump((None, None, traceback.format_exc()), out)
        out.flush()
        sys.exit(1)


if __name__ == "__main__":
    serve()
