"""What one archive holds, as INFO.txt and the report tell it (built by export.stats)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .charts import Chart
from .parsing import Problem
from .resources import Resources
from .runfigures import RunFigures
from .study.compute import Study
from .tables import NameRow

GRAPHS = ("statistic", "vector", "none")


@dataclass
class Contents:
    results_dir: str
    runconfig: str | None
    selection: str
    precision: float
    graphs: str  # one of GRAPHS
    runs: list  # store.Run: id, attrs, itervars, config
    labels: dict  # run id -> short label
    files: list[dict]  # the result files read (parse's records)
    skipped_files: list[str]
    has_ini: bool
    scalars: int
    statistics: int
    histogram_bins: int
    vectors: int
    resampled: int  # vectors with data, each in csv/vectors/
    empty_vectors: list[dict]  # declared without data: the first few (gather.UNDRAWN_KEPT)
    empty_count: int  # all of them
    figures: list[RunFigures]
    resources: Resources
    post_seconds: float
    peak_mb: float
    problems: list[Problem] = field(default_factory=list)
    scalar_rows: list[NameRow] = field(default_factory=list)
    statistic_rows: list[NameRow] = field(default_factory=list)
    vector_rows: list[NameRow] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    graph_files: int = 0  # PNGs under graphs/
    study: Study | None = None  # when a config's runs differ in their iteration variables
    study_uncharted: list = field(default_factory=list)  # (ConfigStudy, Result) listed, not charted

    def title(self) -> str:
        """The run(s) in a few words: config and network of the first run, and how many runs."""
        if not self.runs:
            return "OMNeT++ results"
        a = self.runs[0].attrs
        head = a.get("configname") or self.runs[0].run_id
        if a.get("network"):
            head += f" ({a['network']})"
        return head + (f", {len(self.runs)} runs" if len(self.runs) > 1 else "")
