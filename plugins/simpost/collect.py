"""collect: bring a run's result files into its work dir, so later stages never touch the simulator's folder.

The results root is written by others (simulators, users), so every file is opened relative to a
descriptor of the root, one path component at a time and never through a symbolic link, and is
copied from that descriptor: a file swapped for a link between listing and copying cannot bring
anything from outside the root into the archive.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omnetpp_results import find_inputs, sha256_file

from simpost.paths import PathError, resolve_results_dir, results_root

#: free space kept on the work dir's filesystem beyond what a copy needs (other runs share it):
#: 64 MiB, or a twentieth of a smaller filesystem
SPACE_MARGIN = 64 << 20


class CollectError(PathError):
    """The run's files cannot be brought into the work dir; retrying would not help."""


@dataclass(frozen=True)
class CollectedFile:
    name: str
    size: int
    sha256: str
    how: str  # "linked" (same filesystem, instant) or "copied"


@dataclass
class Collected:
    source: str
    input_dir: str
    files: list[CollectedFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict:
        return {**asdict(self), "total_bytes": self.total_bytes}


def _open_beneath(root_fd: int, relative: Path, stack: ExitStack) -> int:
    """A read descriptor of root/relative, refusing a symbolic link at any component.

    O_NONBLOCK keeps a FIFO planted in the folder from blocking the open; the caller then refuses
    anything that is not a regular file.
    """
    parent = root_fd
    *dirs, leaf = relative.parts
    try:
        for part in dirs:
            parent = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            stack.callback(os.close, parent)
        fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathError(f"{relative} became a symbolic link while it was collected") from None
        raise
    stack.callback(os.close, fd)
    return fd


def _ensure_space(dst_dir: Path, needed: int, name: str) -> None:
    vfs = os.statvfs(dst_dir)
    free = vfs.f_bavail * vfs.f_frsize
    spare = min(SPACE_MARGIN, vfs.f_blocks * vfs.f_frsize // 20)
    if needed + spare > free:
        raise CollectError(f"{name} needs {needed:,} bytes in the work dir, which has {free:,} free "
                           f"(and keeps {spare:,} spare): free space or move SIMPOST_WORK_DIR")


def _copy_data(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy only the data extents, so a sparse file (holes) takes no more space than it did."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(src_fd, pos, os.SEEK_DATA)
            end = os.lseek(src_fd, start, os.SEEK_HOLE)
        except OSError as err:
            if err.errno != errno.ENXIO:  # ENXIO: only a hole left
                raise
            break
        os.lseek(src_fd, start, os.SEEK_SET)
        os.lseek(dst_fd, start, os.SEEK_SET)
        left = end - start
        while left > 0:
            chunk = os.read(src_fd, min(left, 1 << 20))
            if not chunk:
                return
            os.write(dst_fd, chunk)
            left -= len(chunk)
        pos = end
    os.ftruncate(dst_fd, size)


def _place(src_fd: int, st: os.stat_result, dst: Path) -> str:
    """Hard-link the opened file itself when possible (instant; keeps the mtime the .vci
    fingerprint needs), else copy its data extents with the mtime."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        # linkat(2) through /proc links exactly the inode we opened, never what a name points to now
        os.link(f"/proc/self/fd/{src_fd}", dst)
        return "linked"
    except OSError:
        pass
    _ensure_space(dst.parent, st.st_blocks * 512, dst.name)
    try:
        with open(dst, "wb") as out:
            _copy_data(src_fd, out.fileno(), st.st_size)
    except OSError as err:
        dst.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CollectError(f"the work dir ran out of space copying {dst.name} "
                               f"({st.st_size:,} bytes)") from None
        raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    return "copied"


def _collect_one(root: Path, root_fd: int, path: Path, source: Path, input_dir: Path) -> CollectedFile:
    relative = path.relative_to(source)
    try:
        real = path.resolve()  # a link inside the root is allowed; its target is then opened link-free
    except OSError:  # a link swapped mid-resolution
        raise PathError(f"{relative} changed between a file and a link while it was collected") from None
    if not real.is_relative_to(root):
        raise PathError(f"{relative} is a link leading outside the results root")
    with ExitStack() as stack:
        fd = _open_beneath(root_fd, real.relative_to(root), stack)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathError(f"{relative} is not a regular file")
        how = _place(fd, st, input_dir / relative)
    return CollectedFile(str(relative), st.st_size, sha256_file(input_dir / relative), how)


def collect(results_dir: str, input_dir: Path, log=print) -> Collected:
    """Copy the run's .vec/.vci/.sca/.ini/Cmdenv logs into input_dir."""
    root = results_root()
    source = resolve_results_dir(results_dir, root)
    inputs = find_inputs(source)
    input_dir.mkdir(parents=True, exist_ok=True)
    collected = Collected(str(source), str(input_dir))
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in inputs.files():
            try:
                done = _collect_one(root, root_fd, path, source, input_dir)
            except BaseException:
                shutil.rmtree(input_dir, ignore_errors=True)  # nothing half-collected stays behind
                raise
            collected.files.append(done)
            log(f"collect: {done.how} {done.name} ({done.size} bytes)")
    finally:
        os.close(root_fd)
    return collected
