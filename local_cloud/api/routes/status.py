"""Health (public) and status (behind the API key)."""
from __future__ import annotations

import shutil

import anyio.to_thread
from fastapi import APIRouter

from ... import __version__
from ...reconcile import quarantine_totals
from ..deps import Authenticated, SettingsDep, StoreDep

public_router = APIRouter()
router = APIRouter(dependencies=Authenticated)


@public_router.get("/health")
async def health():
    return {"status": "ok", "version": __version__}


@router.get("/api/status")
async def status(store: StoreDep, settings: SettingsDep):
    rows = store.live_files()
    return {"files": len(rows), "bytes": sum(r.size for r in rows),
            "sessions": len(store.registry.sessions()),
            "free_bytes": shutil.disk_usage(store.folder).free,
            "reserved_bytes": store.reserved(),
            "max_size": settings.max_size, "reconcile": store.report,
            "quarantine": await anyio.to_thread.run_sync(quarantine_totals, store.quarantine_dir)}
