"""Issue 13 item 2: a summarizing precision or a sample time that would make an absurd grid is refused
at once with a ResultsError naming the precision and the span: no endless loop, no OverflowError."""
from __future__ import annotations

import pytest

from omnetpp_results import ResultsError, parse, stats
from omnetpp_results.resample import MAX_POINTS, MAX_POINTS_TOTAL

HEAD = "version 3\nrun r1\nattr configname General\nattr runnumber 0\n"


def vec_file(tmp_path, times: list[str], vectors: int = 1):
    """A small ETV .vec: `vectors` vectors, each with samples at `times`."""
    lines = [HEAD]
    lines += [f"vector {i} Net.node[{i}] x:vector ETV\n" for i in range(vectors)]
    lines += [f"{i}\t{n}\t{t}\t{n}\n" for i in range(vectors) for n, t in enumerate(times)]
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "r.vec").write_text("".join(lines) + "\n")  # the end-of-run blank line
    return folder


def export(folder, tmp_path, precision):
    parse(folder, tmp_path / "parsed")
    return stats(tmp_path / "parsed", tmp_path / "out", precision=precision, graphs=False)


# a hanging stats call fails here instead of holding the suite (on the old code these looped forever)
pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("precision", [1e-100, 5e-324, 1e-6])
def test_a_precision_far_below_the_span_is_refused(tmp_path, precision):
    folder = vec_file(tmp_path, ["0.5", "100"])
    with pytest.raises(ResultsError, match=rf"precision {precision:g} s over a span of 100 s"):
        export(folder, tmp_path, precision)


def test_one_huge_sample_time_is_refused(tmp_path):
    folder = vec_file(tmp_path, ["1", "1e300"])
    with pytest.raises(ResultsError, match=r"precision 100 s over a span of 1e\+300 s"):
        export(folder, tmp_path, 100)


@pytest.mark.parametrize("time", ["inf", "1e400"])
def test_an_infinite_sample_time_is_a_clear_error(tmp_path, time):
    folder = vec_file(tmp_path, ["1", time])
    with pytest.raises(ResultsError):  # refused by the reader or by the grid, never an OverflowError
        export(folder, tmp_path, 100)


def test_the_run_as_a_whole_is_bounded(tmp_path):
    """Each vector below the per-vector limit, all of them together above the run's."""
    vectors = MAX_POINTS_TOTAL // MAX_POINTS + 1
    folder = vec_file(tmp_path, ["0", str(MAX_POINTS - 1)], vectors=vectors)
    with pytest.raises(ResultsError, match=rf"over {vectors} vectors spanning up to .* per run"):
        export(folder, tmp_path, 1)
    assert not (tmp_path / "out" / "csv" / "vectors.csv").exists()  # refused before writing


def test_a_fine_grid_within_the_limits_is_written(tmp_path):
    folder = vec_file(tmp_path, ["0", "10"])
    export(folder, tmp_path, 0.001)
    rows = (tmp_path / "out" / "csv" / "vectors").iterdir().__next__().read_text().splitlines()
    assert len(rows) == 1 + 10_000 and rows[-1] == "10,1"
