"""collect: results_dir stays inside the results root, and the run's files arrive intact in the work dir."""
from __future__ import annotations

import hashlib
import os
import subprocess
import threading

import pytest

from simpost.collect import collect
from simpost.paths import PathError, resolve_results_dir


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "results"
    (root / "run1" / "results").mkdir(parents=True)
    (root / "run1" / "results" / "a.sca").write_text("version 3\n")
    (tmp_path / "outside").mkdir()
    monkeypatch.setenv("SIMPOST_RESULTS_ROOT", str(root))
    return root


@pytest.mark.parametrize("given", ["run1", "run1/", "./run1", "run1/results"])
def test_relative_dirs_inside_the_root_resolve(root, given):
    assert resolve_results_dir(given, root).is_relative_to(root)


def test_absolute_dir_inside_the_root_is_accepted(root):
    assert resolve_results_dir(str(root / "run1"), root) == root / "run1"


@pytest.mark.parametrize("given, reason", [
    ("../outside", "'..'"),
    ("run1/../../outside", "'..'"),
    ("/etc", "outside the results root"),
    ("missing", "not a folder"),
    ("run1/results/a.sca", "not a folder"),
    ("  ", "empty"),
])
def test_dirs_that_leave_or_miss_the_root_are_refused(root, given, reason):
    with pytest.raises(PathError, match=reason):
        resolve_results_dir(given, root)


def test_symlinked_dir_leaving_the_root_is_refused(root, tmp_path):
    (root / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(PathError, match="outside the results root"):
        resolve_results_dir("escape", root)


def test_symlinked_file_leaving_the_root_is_refused(root, tmp_path):
    secret = tmp_path / "outside" / "x.vec"
    secret.write_text("version 3\n")
    (root / "run1" / "results" / "x.vec").symlink_to(secret)
    with pytest.raises(PathError, match="outside the results root"):
        collect("run1", tmp_path / "work")


def test_collect_brings_every_result_file_with_its_hash(shared_results, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPOST_RESULTS_ROOT", str(shared_results))
    record = collect("aloha-PureAloha1", tmp_path / "input", log=lambda m: None).as_dict()
    names = {f["name"] for f in record["files"]}
    assert names == {"omnetpp.ini", "run0.stdout.log", "run0.time.txt", "results/PureAloha1-#0.sca",
                     "results/PureAloha1-#0.vci", "results/PureAloha1-#0.vec"}
    for f in record["files"]:
        copy = tmp_path / "input" / f["name"]
        source = shared_results / "aloha-PureAloha1" / f["name"]
        assert copy.stat().st_size == f["size"] == source.stat().st_size
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == f["sha256"]
        assert int(copy.stat().st_mtime) == int(source.stat().st_mtime)  # the .vci fingerprint survives
    assert record["total_bytes"] == sum(f["size"] for f in record["files"])


def test_folder_without_result_files_is_refused(root, tmp_path):
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no results here")
    with pytest.raises(Exception, match=r"(?i)no .*result"):
        collect("empty", tmp_path / "work")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def _swap_forever(link: "os.PathLike", regular: str, targets: list, stop, counter: list) -> None:
    """Atomically replace `link` by a regular file, then by a symlink to each target, until stopped."""
    tmp = f"{link}.swap"
    while not stop.is_set():
        for target in targets:
            with open(tmp, "w") as f:
                f.write(regular)
            os.replace(tmp, link)
            os.symlink(target, tmp)
            os.replace(tmp, link)
            counter[0] += 2


def test_swapping_a_file_for_a_symlink_never_collects_the_target(root, tmp_path, capsys):
    """Issue 13 item 1: listing then copying by name let a swapped-in link copy any file of the worker."""
    secret = tmp_path / "outside" / "secret.ini"
    secret.write_text("SECRET=outside the results root\n")
    ini = root / "run1" / "omnetpp.ini"
    ini.write_text("[General]\n")
    stop, swaps = threading.Event(), [0]
    swapper = threading.Thread(target=_swap_forever,
                               args=(ini, "[General]\n", [str(secret), "/proc/self/environ"], stop, swaps))
    swapper.start()
    leaks, refused, calls = 0, 0, 1000
    try:
        for i in range(calls):
            work = tmp_path / "work" / str(i)
            try:
                record = collect("run1", work, log=lambda m: None)
            except PathError:
                refused += 1
                assert not work.exists()  # nothing half-collected stays behind
                continue
            if "omnetpp.ini" in {f.name for f in record.files}:
                text = (work / "omnetpp.ini").read_bytes()
                leaks += text != b"[General]\n"
    finally:
        stop.set()
        swapper.join()
    with capsys.disabled():
        print(f"\ncollect race: {swaps[0]} symlink swaps during {calls} collects, "
              f"{refused} refused, {leaks} leaks")
    assert swaps[0] > calls  # the swapper really raced the collects
    assert leaks == 0


def test_a_link_inside_the_root_is_collected_as_its_target(root, tmp_path):
    shared = root / "shared.ini"
    shared.write_text("[General]\nsim-time-limit = 1s\n")
    (root / "run1" / "omnetpp.ini").symlink_to(shared)
    record = collect("run1", tmp_path / "work", log=lambda m: None)
    assert (tmp_path / "work" / "omnetpp.ini").read_text() == shared.read_text()
    assert not (tmp_path / "work" / "omnetpp.ini").is_symlink()
    assert {f.name for f in record.files} == {"omnetpp.ini", "results/a.sca"}


@pytest.fixture
def small_work_fs(tmp_path):
    """A 16 MiB filesystem of its own for the work dir: results and work dir on different filesystems
    (as in docker-compose), so files are copied, not linked."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_sparse_file_is_copied_without_filling_the_work_disk(root, small_work_fs):
    """Issue 13 item 8: a 2 GiB sparse .vec was copied in full and filled the work disk."""
    vec = root / "run1" / "results" / "big.vec"
    with open(vec, "wb") as f:
        f.write(b"version 3\n")
        f.truncate(2 << 30)
    record = collect("run1", small_work_fs / "input", log=lambda m: None)
    copy = small_work_fs / "input" / "results" / "big.vec"
    assert {f.how for f in record.files} == {"copied"}
    assert copy.stat().st_size == 2 << 30
    assert copy.stat().st_blocks * 512 < 1 << 20
    assert copy.read_bytes()[:10] == b"version 3\n"
    assert int(copy.stat().st_mtime) == int(vec.stat().st_mtime)


def test_a_file_larger_than_the_work_disk_fails_at_once_with_the_sizes(root, small_work_fs):
    """Issue 13 item 8: ENOSPC was retried like a transient error; now it is a final CollectError."""
    from simpost.collect import CollectError

    big = root / "run1" / "results" / "big.vec"
    big.write_bytes(b"version 3\n" + os.urandom(24 << 20))
    with pytest.raises(CollectError, match=r"big\.vec needs [\d,]+ bytes in the work dir, which has [\d,]+ free"):
        collect("run1", small_work_fs / "input", log=lambda m: None)
    assert not (small_work_fs / "input").exists()


@pytest.mark.parametrize("given, reason", [
    ("run1\x00/etc", "control character"),
    ("run1\nINFO", "control character"),
    ("x" * 256, "longer than the filesystem allows"),
    ("a/" * 2100, "longer than the filesystem allows"),
    ("run\ud800", "not valid UTF-8"),
])
def test_names_no_filesystem_holds_are_refused_as_bad_input(root, given, reason):
    """Issue 13 item 11: NUL and over-long names raised ValueError/OSError, which were retried."""
    with pytest.raises(PathError, match=reason):
        resolve_results_dir(given, root)
