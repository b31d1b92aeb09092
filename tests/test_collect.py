"""collect: results_dir stays inside the results root, and the run's files arrive intact in the work dir."""
from __future__ import annotations

import hashlib
import os

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
    record = collect("aloha-PureAloha1", tmp_path / "input", log=lambda m: None)
    names = {f["name"] for f in record["files"]}
    assert names == {"omnetpp.ini", "run0.stdout.log", "results/PureAloha1-#0.sca",
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
