"""Small shared pieces of the Airflow-level tests."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile

ARCHIVE_LAYOUT = {"INFO.txt", "omnetpp.ini", "csv/scalars.csv", "csv/statistics.csv", "csv/vectors.csv",
                  "simrun/simrun-stats.csv", "MANIFEST.sha256"}


def local_backend_conn(url: str, api_key: str, keep_days: int = 7, active: bool = True) -> str:
    """A storage_backend connection as AIRFLOW_CONN_<ID> JSON, the way an admin defines it by env."""
    return json.dumps({
        "conn_type": "storage_backend", "password": api_key, "description": "test local_cloud",
        "extra": {"storage_backend": "Local cloud", "storage_backend_id": "local",
                  "storage_backend_config": json.dumps({"server": url}),
                  "storage_backend_keep_days": keep_days, "storage_backend_active": active},
    })


def verified_archive(data: bytes) -> set[str]:
    """Names in the archive, after checking MANIFEST.sha256 covers and matches every other file."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        manifest = {}
        for line in z.read("MANIFEST.sha256").decode().splitlines():
            digest, name = line.split(None, 1)
            manifest[name.lstrip("*")] = digest
        assert set(manifest) == names - {"MANIFEST.sha256"}
        for name, digest in manifest.items():
            assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
    return names
