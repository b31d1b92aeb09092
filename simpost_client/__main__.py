"""simpost: trigger simulation_postprocess from the simulator side and print the share link.

  simpost --airflow http://host:8080 --user admin run --simulation-id S --results-dir D --backend B [--wait]
  simpost ... status RUN_ID | cancel RUN_ID | export-stats [--since DATE] [--out FILE.jsonl]
  simpost ... where SIMULATION_ID | catalog export [--since DATE] [--out FILE] | catalog import FILE
  simpost ... restore SIMULATION_ID [--backend B] [--keep-days N] [--wait]
The password comes from SIMPOST_AIRFLOW_PASSWORD (never from the command line, where `ps` shows it).
Exit status: 0 done, 1 the run failed or was refused, 2 Airflow refused a call, 3 `restore --wait`
gave up waiting while the restore goes on.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime, timezone

from simpost_client.client import RESTORE_DAG_ID, Simpost, SimpostError, StillRunning, progress_bar

RESOURCES = ("peak_sim_ram_bytes", "peak_disk_bytes", "sim_wall_seconds")
STILL_RUNNING = 3  # exit status of `restore --wait` that stopped waiting: the restore goes on


def _resource(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or key not in RESOURCES:
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=NUMBER with KEY one of {', '.join(RESOURCES)}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None


def _since(text: str) -> str:
    """A date or time as ISO 8601 with a zone (UTC when none is given), as the REST API wants it."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-21 or 2026-11-21T14:00") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simpost", description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", default=os.environ.get("SIMPOST_AIRFLOW_URL", "http://localhost:8080"))
    parser.add_argument("--user", default=os.environ.get("SIMPOST_AIRFLOW_USER", "admin"))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="trigger a post-processing run")
    run.add_argument("--simulation-id", required=True)
    run.add_argument("--results-dir", required=True)
    run.add_argument("--backend", required=True, help="storage_backend connection id")
    run.add_argument("--title", default="")
    run.add_argument("--precision", type=float, default=100)
    run.add_argument("--statistics", nargs="+", default=["all"], help='"all", "ops" or glob patterns')
    run.add_argument("--runconfig", help='OMNeT++ config, "X" or "Config X"')
    run.add_argument("--graphs", choices=["statistic", "vector", "none"], default="statistic")
    run.add_argument("--email")
    run.add_argument("--callback")
    run.add_argument("--callback-events", choices=["final", "all"], default="final")
    run.add_argument("--resources", nargs="+", type=_resource, default=[], metavar="KEY=NUMBER",
                     help=f"what the simulator measured: {', '.join(RESOURCES)}")
    run.add_argument("--run-timeout", type=float, default=43200, help="seconds the run may take (default 12 h)")
    run.add_argument("--wait", action="store_true", help="show the stages as they end, then print the share link")
    run.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")
    restore = sub.add_parser("restore", help="bring an archived simulation's archive back (storage_restore)")
    restore.add_argument("simulation_id")
    restore.add_argument("--backend", help="storage_backend connection id (default: where it was first uploaded)")
    restore.add_argument("--keep-days", type=int, help="days the restored copy stays (default: the DAG's)")
    restore.add_argument("--email")
    restore.add_argument("--callback")
    restore.add_argument("--wait", action="store_true", help="wait for the restore, then print the new share link")
    restore.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")
    status = sub.add_parser("status", help="state of a run, and its link once uploaded")
    status.add_argument("run_id")
    cancel = sub.add_parser("cancel", help="mark a run failed; user and simulator hear of it once")
    cancel.add_argument("run_id")
    export = sub.add_parser("export-stats", help="result JSON of every finished run, one line per run")
    export.add_argument("--since", type=_since, help="only runs that ended at or after this date/time (UTC)")
    export.add_argument("--out", help="write to this .jsonl file instead of stdout")
    where = sub.add_parser("where", help="the archives of a simulation and where their copies are")
    where.add_argument("simulation_id")
    catalog = sub.add_parser("catalog", help="move the catalog of archives and copies between deployments")
    moves = catalog.add_subparsers(dest="catalog_command", required=True)
    dump = moves.add_parser("export", help="the catalog as versioned JSON lines")
    dump.add_argument("--since", type=_since, help="only archives created or copies changed since this date/time (UTC)")
    dump.add_argument("--out", help="write to this file instead of stdout")
    load = moves.add_parser("import", help="merge an export into this deployment's catalog")
    load.add_argument("file", help='a file written by "simpost catalog export" ("-": stdin)')
    return parser


def _conf(args) -> dict:
    statistics = args.statistics[0] if args.statistics in (["all"], ["ops"]) else args.statistics
    return {"simulation_id": args.simulation_id, "title": args.title, "results_dir": args.results_dir,
            "storage_backend": args.backend, "summarizing_precision": args.precision,
            "statistics": statistics, "runconfig": args.runconfig, "graphs": args.graphs,
            "notification_email": args.email, "callback_endpoint": args.callback,
            "callback_events": args.callback_events, "resources": dict(args.resources) or None,
            "run_timeout": args.run_timeout}


def _run(client: Simpost, args) -> int:
    run_id = client.trigger(_conf(args))
    print(f"triggered {run_id}", file=sys.stderr)
    if not args.wait:
        print(run_id)
        return 0
    stages = client.stages()
    tty = sys.stderr.isatty()

    def show(states: dict) -> None:
        print(("\r" if tty else "") + progress_bar(stages, states), end="" if tty else "\n", file=sys.stderr, flush=True)

    final = client.wait(run_id, timeout=args.timeout, on_change=show)
    if tty:
        print(file=sys.stderr)
    if final["state"] != "success":
        print(client.failure(run_id), file=sys.stderr)
        return 1
    uploaded = client.upload(run_id)
    print(json.dumps(uploaded), file=sys.stderr)
    print(uploaded["link"])
    return 0


def _restore(client: Simpost, args) -> int:
    """Start storage_restore for the simulation's newest archive; with --wait, its new link. A
    simulation the catalog does not know is answered at once, without starting a run."""
    if next(client.archives(simulation_id=args.simulation_id), None) is None:
        print(f"simpost: no archive of simulation {args.simulation_id!r} in the catalog: nothing to restore",
              file=sys.stderr)
        return 1
    conf = {"simulation_id": args.simulation_id, "storage_backend": args.backend, "keep_days": args.keep_days,
            "notification_email": args.email, "callback_endpoint": args.callback}
    run_id = client.trigger({k: v for k, v in conf.items() if v is not None}, dag_id=RESTORE_DAG_ID)
    print(f"triggered {run_id}", file=sys.stderr)
    if not args.wait:
        print(run_id)
        return 0
    try:
        state = client.wait(run_id, timeout=args.timeout, dag_id=RESTORE_DAG_ID)["state"]
    except StillRunning:
        print(f"simpost: restore {run_id} is still running after {args.timeout:.0f} s and goes on without waiting:"
              " a copy in a cold S3 class (GLACIER, DEEP_ARCHIVE) takes hours to thaw.\n"
              f"Look again with `simpost where {args.simulation_id}` (its copy says restoring, then present with"
              f" the link), or wait with `simpost restore {args.simulation_id} --wait` (it joins this restore).",
              file=sys.stderr)
        return STILL_RUNNING
    restored = client.result(run_id, RESTORE_DAG_ID)
    if state != "success":
        why = restored["reason"] if restored and restored.get("reason") else "see the task log of storage_restore"
        print(f"simpost: restore {run_id} failed: {why}", file=sys.stderr)
        return 1
    until = f"link valid until {_when(restored['expires_at'])}" if restored["expires_at"] else "link does not expire"
    print(f"restored on {restored['backend']}; {until}", file=sys.stderr)
    print(restored["link"])
    return 0


def _export(client: Simpost, args) -> int:
    exported = missing = 0
    out = open(args.out, "w") if args.out else sys.stdout
    try:
        for run in client.finished_runs(args.since):
            result = client.result(run["dag_run_id"])
            if result is None:
                missing += 1
                continue
            out.write(json.dumps(result, sort_keys=True) + "\n")
            exported += 1
    finally:
        if args.out:
            out.close()
    note = f"; {missing} finished runs have no result record (they ran before simpost recorded one)" if missing else ""
    print(f"exported {exported} runs{note}", file=sys.stderr)
    return 0


def _when(text: str | None) -> str:
    return text.replace("T", " ")[:16] + " UTC" if text else "never"


def _where(client: Simpost, args) -> int:
    """Like git-annex whereis: each archive of the simulation, then one line per copy (an expiring
    link, an S3 one, signed anew for this answer)."""
    found = 0
    for archive in client.archives(simulation_id=args.simulation_id, fresh_links=True):
        found += 1
        present = sum(1 for c in archive["copies"] if c["state"] == "present")
        title = f' "{archive["title"]}"' if archive["title"] else ""
        print(f"archive {archive['sha256'][:12]}{title}  {archive['size']} bytes  created {_when(archive['created'])}"
              f"  ({present} of {archive['copies_wanted']} wanted copies present)")
        for copy in archive["copies"]:
            error = f"  ({copy['last_error']})" if copy["last_error"] and copy["state"] != "present" else ""
            until = f"  link valid until {_when(copy['link_expires'])}" if copy.get("link_expires") else ""
            print(f"  {copy['state']:<9} {copy['backend']:<20} {copy['link'] or '-'}"
                  f"  verified {_when(copy['last_verified'])}{until}{error}")
    if not found:
        print(f"no archive of simulation {args.simulation_id!r} in the catalog", file=sys.stderr)
        return 1
    return 0


def _catalog(client: Simpost, args) -> int:
    if args.catalog_command == "export":
        lines = 0
        with open(args.out, "w", encoding="utf-8") if args.out else contextlib.nullcontext(sys.stdout) as out:
            for line in client.export_catalog(args.since):
                out.write(line + "\n")
                lines += 1
        print(f"exported {max(lines - 1, 0)} catalog lines (archives and copies)", file=sys.stderr)
        return 0
    try:
        source = open(args.file, "rb") if args.file != "-" else contextlib.nullcontext(sys.stdin.buffer)
    except OSError as err:
        print(f"simpost: cannot read {args.file}: {err.strerror}", file=sys.stderr)
        return 2
    with source as lines:
        counts = client.import_catalog(lines)
    print("imported: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if k != "changed")
          + ("" if counts["changed"] else " (nothing changed)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    password = os.environ.get("SIMPOST_AIRFLOW_PASSWORD")
    if password is None:
        parser.error("set SIMPOST_AIRFLOW_PASSWORD to the Airflow user's password")
    client = Simpost(args.airflow, args.user, password)
    try:
        if args.command == "status":
            state = client.run(args.run_id)["state"]
            print(state)
            if state == "success":
                print(client.upload(args.run_id)["link"])
            return 0 if state != "failed" else 1
        if args.command == "cancel":
            client.cancel(args.run_id)
            print(f"cancelled {args.run_id}: its stages stop; user and simulator are told once", file=sys.stderr)
            return 0
        if args.command == "export-stats":
            return _export(client, args)
        if args.command == "where":
            return _where(client, args)
        if args.command == "catalog":
            return _catalog(client, args)
        if args.command == "restore":
            return _restore(client, args)
        return _run(client, args)
    except SimpostError as err:
        print(f"simpost: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
