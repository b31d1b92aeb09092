"""Helper commands an admin runs once to fill a seafile backend's config.

    seafile-get-token --server https://seafile.example.org        -> prints the API token
    seafile-list-repo-ids --server https://seafile.example.org    -> id, name, permission per library

The server is always given (no built-in host); secrets are prompted for without echo, or read
from stdin / the environment for scripts, never taken from the command line where `ps` shows them.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from storage_backends.base import BackendError
from storage_backends.retry import RetryPolicy
from storage_backends.seafile_client import SeafileClient

# Interactive commands: fail fast instead of backing off for minutes.
CLI_RETRY = RetryPolicy(attempts=3, base_delay=1.0, max_delay=5.0)


def _server_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="URL",
                        help="Seafile base URL, e.g. https://seafile.example.org")


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass(prompt)


def get_token_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seafile-get-token",
        description="Log in to a Seafile server and print the account's API token (for the backend config's"
                    " \"token\").")
    _server_arg(parser)
    parser.add_argument("--username", "-u", help="account e-mail/login; asked for when missing")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin instead of prompting")
    parser.add_argument("--otp", help="two-factor authentication code, if the account uses 2FA")
    args = parser.parse_args(argv)

    username = args.username
    if not username:
        if args.password_stdin:
            parser.error("--password-stdin needs --username")
        username = input("Seafile username: ").strip()
    password = _read_secret(f"Password for {username}: ", args.password_stdin)
    if not username or not password:
        parser.error("username and password are required")
    try:
        token = SeafileClient(args.server, retry=CLI_RETRY).get_token(username, password, otp=args.otp)
    except BackendError as exc:
        print(f"seafile-get-token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


def list_repo_ids_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seafile-list-repo-ids",
        description="List the libraries a Seafile token can see: id (the backend config's \"repoid\"), name,"
                    " permission.")
    _server_arg(parser)
    parser.add_argument("--token-stdin", action="store_true",
                        help="read the token from stdin; otherwise $SEAFILE_TOKEN, otherwise a prompt")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    token = os.environ.get("SEAFILE_TOKEN") if not args.token_stdin else None
    if not token:
        token = _read_secret("Seafile API token: ", args.token_stdin)
    if not token:
        parser.error("a token is required (seafile-get-token prints one)")
    try:
        repos = SeafileClient(args.server, token, retry=CLI_RETRY).list_repos()
    except BackendError as exc:
        print(f"seafile-list-repo-ids: {exc}", file=sys.stderr)
        return 1
    rows = [{"id": r.get("id", ""), "name": r.get("name", ""), "permission": r.get("permission", "")} for r in repos]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'id':36}  {'name':{width}}  permission")
    for r in rows:
        print(f"{r['id']:36}  {r['name']:{width}}  {r['permission']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(get_token_main())
