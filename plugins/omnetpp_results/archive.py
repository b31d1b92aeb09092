"""The archive: MANIFEST.sha256 of every file, a streamed zip, and its check after download."""
from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import ResultsError
from .fastparse import threads
from .record import Record

#: files never stored compressed (already compressed)
STORED = {".png", ".pdf", ".zip", ".gz", ".xz", ".bz2", ".zst", ".jpg", ".jpeg", ".npy"}
MANIFEST = "MANIFEST.sha256"
#: deflate level of the zip: 1 compresses CSV text three times as fast as the default 6 for an
#: archive about 12% bigger (a 3.8 M-scalar scalars.csv: 0.7 s instead of 2.2 s)
LEVEL = 1
#: members at least this large are deflated by threads, a PIECE at a time (see ParallelDeflate)
PARALLEL_BYTES = 8 << 20
PIECE = 1 << 20


@dataclass
class ArchiveResult(Record):
    path: str
    size: int
    sha256: str
    files: int


def sha256_file(path: Path) -> str:
    """Streamed in 1 MiB reads: archives and .vec files can be larger than memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


class ParallelDeflate:
    """A raw deflate stream made from PIECE-sized pieces by threads (zlib lets go of the GIL), as
    pigz does: each piece compressed on its own, primed with the 32 KiB before it and ended on a
    byte boundary (Z_SYNC_FLUSH), so that their concatenation is one valid stream, about as small
    as a single compressor makes it. What zipfile's member writer calls: compress(), flush()."""

    def __init__(self, pool: ThreadPoolExecutor, workers: int, level: int = LEVEL):
        self.pool, self.workers, self.level = pool, workers, level
        self.pending: deque = deque()
        self.tail = b""  # the last 32 KiB given

    def compress(self, data: bytes) -> bytes:
        self.pending.append(self.pool.submit(_deflate, self.level, self.tail, bytes(data)))
        self.tail = (self.tail + data[-32768:])[-32768:]
        out = []
        while self.pending and (self.pending[0].done() or len(self.pending) > 2 * self.workers):
            out.append(self.pending.popleft().result())
        return b"".join(out)

    def flush(self) -> bytes:
        out = [f.result() for f in self.pending]
        self.pending.clear()
        out.append(zlib.compressobj(self.level, zlib.DEFLATED, -15).flush())  # an empty last block
        return b"".join(out)


def _deflate(level: int, zdict: bytes, data: bytes) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15, **({"zdict": zdict} if zdict else {}))
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def write_archive(content_dir, zip_path) -> ArchiveResult:
    """A streamed zip of everything (ZIP64 when needed) and MANIFEST.sha256 of every file, which is
    also left in content_dir. Each file is read once: hashed while it is compressed."""
    root = Path(content_dir)
    zip_path = Path(zip_path)
    if not root.is_dir():
        raise ResultsError("archive content folder does not exist", path=root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == MANIFEST or p.resolve() == zip_path.resolve():
                continue
            files.append((rel, p))
    files.sort()
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(zip_path.name + ".part")
    lines = []
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=LEVEL,
                         allowZip64=True) as zf, ThreadPoolExecutor(workers := threads()) as pool:
        for rel, p in files:
            info = zipfile.ZipInfo.from_file(p, rel)
            info.compress_type = zipfile.ZIP_STORED if p.suffix.lower() in STORED else zipfile.ZIP_DEFLATED
            info._compresslevel = LEVEL  # open() leaves a given ZipInfo's level unset: zlib's default, 6
            h = hashlib.sha256()
            with open(p, "rb") as src, zf.open(info, "w") as dst:
                if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size >= PARALLEL_BYTES:
                    dst._compressor = ParallelDeflate(pool, workers)  # zipfile has no public hook for it
                while chunk := src.read(PIECE):
                    h.update(chunk)
                    dst.write(chunk)
            lines.append(f"{h.hexdigest()}  {rel}\n")
        (root / MANIFEST).write_text("".join(lines))
        zf.write(root / MANIFEST, MANIFEST)
    os.replace(tmp, zip_path)
    return ArchiveResult(path=str(zip_path), size=zip_path.stat().st_size,
                         sha256=sha256_file(zip_path), files=len(files) + 1)


def verify_archive(zip_path) -> int:
    """Check a downloaded archive against its MANIFEST.sha256: every member listed, every digest equal.

    Returns the number of files the manifest covers; any mismatch is a ResultsError naming the member.
    """
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist()) - {MANIFEST}
        if len(names) == len(zf.namelist()):
            raise ResultsError("archive has no MANIFEST.sha256", path=zip_path)
        listed = {}
        for line in zf.read(MANIFEST).decode().splitlines():
            digest, name = line.split(None, 1)
            listed[name.lstrip("*")] = digest
        if names != set(listed):
            raise ResultsError(f"MANIFEST.sha256 does not list exactly the archive's files: "
                               f"unlisted {sorted(names - set(listed))}, missing {sorted(set(listed) - names)}",
                               path=zip_path)
        for name, digest in listed.items():
            h = hashlib.sha256()
            with zf.open(name) as member:
                while chunk := member.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != digest:
                raise ResultsError(f"{name} does not match MANIFEST.sha256", path=zip_path)
    return len(listed)
