"""Make the registry and the folder agree at start-up, without ever deleting stored data.

After a crash, a hand edit or the restore of an older registry backup, files/ may hold files the
registry does not know, and the registry may name files that are missing or changed. Unknown
files and changed ones are moved to quarantine/<UTC time>/ (a rename on the same disk) and
reported in the log and in GET /api/status; an operator decides what becomes of them. Only
leftovers of unfinished uploads in .tmp/ (never acknowledged to anyone) are removed.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

from .redact import link_tag
from .registry import FileRow, iso
from .streaming import hash_file

log = logging.getLogger("local_cloud")


def quarantine_totals(quarantine_dir: Path) -> dict:
    """How much sits in quarantine/ (all start-ups), for /api/status."""
    files = n_bytes = 0
    for root, _dirs, names in os.walk(quarantine_dir):
        for name in names:
            files += 1
            n_bytes += os.lstat(os.path.join(root, name)).st_size
    return {"folder": str(quarantine_dir), "files": files, "bytes": n_bytes}


class _Quarantine:
    """One start-up's quarantine folder, created on the first file put there."""

    def __init__(self, store):
        self.base = store.quarantine_dir / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.moved: list[dict] = []

    def move(self, path: Path, reason: str, row: FileRow | None = None) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        dest = self.base / path.name
        size = path.stat().st_size
        os.replace(path, dest)
        if row is not None:  # what the registry knew, so the file can be identified later
            (self.base / f"{path.name}.json").write_text(json.dumps(asdict(row), indent=1))
        self.moved.append({"file": str(dest.relative_to(self.base.parent.parent)), "bytes": size, "reason": reason})


def _clean_tmp(store, sessions: dict) -> list[str]:
    removed = []
    for p in store.tmp_dir.iterdir():
        sid = p.name[: -len(".part")] if p.name.endswith(".part") else None
        if sid is None or sid not in sessions:
            removed.append(p.name)
            p.unlink()
    for s in sessions.values():
        if not store.part(s.id).exists():
            log.warning("upload session %s (%s): part file missing, session dropped", s.id, s.name)
            store.registry.delete_session(s.id)
    return removed


def _check_file(store, f: FileRow, q: _Quarantine) -> str | None:
    """None when f is intact (recording its mtime if the registry had none), else what is wrong."""
    p = store.files_dir / f.id
    try:
        st = p.stat()
    except FileNotFoundError:
        return "missing"
    if st.st_size != f.size:
        problem = f"has {st.st_size} bytes instead of {f.size}"
    elif f.mtime_ns == st.st_mtime_ns:
        return None
    elif f.mtime_ns is not None and hash_file(p)[0].hexdigest() != f.sha256:
        problem = "changed on disk (checksum differs)"
    else:  # registry from before mtimes were recorded, or a copied/restored file with the right content
        try:
            store.registry.set_mtime(f.id, st.st_mtime_ns)
        except sqlite3.OperationalError as e:
            log.warning("could not record the mtime of %s: %s", link_tag(f.id), e)
        return None
    q.move(p, f"registered as {f.name!r} but {problem}", row=f)
    return problem


def reconcile(store) -> dict:
    """Bring registry and folder into agreement; return the report /api/status shows."""
    reg = store.registry
    removed_tmp = _clean_tmp(store, {s.id: s for s in reg.sessions()})
    known = {f.id: f for f in reg.files()}
    q = _Quarantine(store)
    unregistered = sorted(p.name for p in store.files_dir.iterdir() if p.name not in known)
    for name in unregistered:
        q.move(store.files_dir / name, "not in the registry")
    missing, damaged = [], []
    for f in known.values():
        problem = _check_file(store, f, q)
        if problem is None:
            continue
        (missing if problem == "missing" else damaged).append({"id": f.id, "name": f.name})
        log.warning("registered file %s (%s) %s; unregistered", link_tag(f.id), f.name,
                    "is missing" if problem == "missing" else f"{problem}: moved to quarantine")
        reg.delete_file(f.id)
    if removed_tmp:
        log.info("removed %d orphan temp file(s): %s", len(removed_tmp), ", ".join(removed_tmp))
    if q.moved:
        log.warning("moved %d file(s) to %s (%d the registry does not know, %d changed on disk): nothing was "
                    "deleted; see GET /api/status", len(q.moved), q.base, len(unregistered), len(damaged))
    report = {
        "checked_at": iso(time.time()),
        "files": len(known) - len(missing) - len(damaged),
        "sessions": len(reg.sessions()),
        "orphan_temp_removed": removed_tmp,
        "unregistered_removed": unregistered,  # taken out of files/ into quarantine/, not deleted
        "quarantined": q.moved,
        "missing": missing,
        "damaged": damaged,
    }
    log.info("registry reconciled: %d file(s), %d open upload(s), %d missing, %d quarantined",
             report["files"], report["sessions"], len(missing), len(q.moved))
    return report
