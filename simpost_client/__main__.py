"""simpost: trigger simulation_postprocess from the simulator side and print the share link.

  simpost --airflow http://host:8080 --user admin run --simulation-id S --results-dir D --backend B [--wait]
The password comes from SIMPOST_AIRFLOW_PASSWORD (never from the command line, where `ps` shows it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from simpost_client.client import Simpost, SimpostError


def main(argv: list[str] | None = None) -> int:
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
    run.add_argument("--runconfig")
    run.add_argument("--email")
    run.add_argument("--callback")
    run.add_argument("--wait", action="store_true", help="wait for the run and print the share link")
    run.add_argument("--timeout", type=float, default=3600)
    status = sub.add_parser("status", help="state of a run, and its link once uploaded")
    status.add_argument("run_id")
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
        statistics = args.statistics[0] if args.statistics in (["all"], ["ops"]) else args.statistics
        conf = {"simulation_id": args.simulation_id, "title": args.title, "results_dir": args.results_dir,
                "storage_backend": args.backend, "summarizing_precision": args.precision,
                "statistics": statistics, "runconfig": args.runconfig, "notification_email": args.email,
                "callback_endpoint": args.callback}
        run_id = client.trigger(conf)
        print(f"triggered {run_id}", file=sys.stderr)
        if not args.wait:
            print(run_id)
            return 0
        final = client.wait(run_id, timeout=args.timeout, progress=lambda m: print(m, file=sys.stderr))
        if final["state"] != "success":
            print(client.failure(run_id), file=sys.stderr)
            return 1
        uploaded = client.upload(run_id)
        print(json.dumps(uploaded), file=sys.stderr)
        print(uploaded["link"])
        return 0
    except SimpostError as err:
        print(f"simpost: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
