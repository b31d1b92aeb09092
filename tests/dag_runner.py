"""`airflow dags test`, served: one long-lived process runs the CLI command for each request it reads.

Each `airflow dags test` process spends ~17 CPU-s before its first task, most of it building the
in-process execution API, which a process builds once; the suite runs ~50 of them. Here the first
request pays that and every later one ~1 CPU-s. A request is exactly the CLI command (its argument
parser and function), with the request's environment in place of the process's (connections,
variables and SIMPOST_* settings are read when used) and fds 1 and 2 sent to a file, so the output
is the command's own: Airflow's and the tasks' logs.

Protocol: one JSON line per request on stdin ({"dag_id", "conf", "env", "output"}), one JSON line
per answer on the fd that was stdout at start ({"code", "cpu_s"}).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import traceback


def _cpu_seconds() -> float:
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def _run(parser, request: dict) -> int:
    args = parser.parse_args(["dags", "test", request["dag_id"], "--conf", json.dumps(request["conf"])])
    try:
        args.func(args)
        return 0
    except SystemExit as stop:  # "DagRun failed", as the CLI ends
        if stop.code not in (None, 0):
            print(stop.code if isinstance(stop.code, str) else f"exit {stop.code}", file=sys.stderr)
        return 0 if stop.code in (None, 0) else 1
    except Exception:
        traceback.print_exc()
        return 1


def _serve_one(parser, request: dict) -> int:
    saved = dict(os.environ)
    os.environ.clear()  # exactly the caller's environment: nothing of an earlier request's stays
    os.environ.update(request["env"])
    out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    kept = [os.dup(1), os.dup(2)]
    sys.stdout.flush(), sys.stderr.flush()
    os.dup2(out, 1), os.dup2(out, 2)
    try:
        return _run(parser, request)
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(kept[0], 1), os.dup2(kept[1], 2)
        for fd in (out, *kept):
            os.close(fd)
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed between requests goes to the log, not into the answers
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    for line in sys.stdin:
        code = _serve_one(parser, json.loads(line))
        answers.write(json.dumps({"code": code, "cpu_s": _cpu_seconds()}) + "\n")


if __name__ == "__main__":
    main()
