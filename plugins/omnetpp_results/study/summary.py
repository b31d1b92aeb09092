"""The study as the report's tables tell it (the same rows in report.html and report.pdf)."""
from __future__ import annotations

from ..display import number
from .compute import ConfigStudy, Result

#: rows of the study table in the report; csv/study.csv holds all
MAX_ROWS = 2000


def intro(cs: ConfigStudy, runs: int) -> str:
    xv = cs.x_variable()
    axis = f"x axis: {xv} (the numeric variable with the most values)" if xv else \
        "no variable is numeric: one bar per combination"
    return (f"Config {cs.config}: {runs} runs, {len(cs.combos)} combinations of "
            f"{', '.join(cs.variables)}; {axis}. {len(cs.varying())} results vary, "
            f"{len(cs.constant())} do not" + (f", {len(cs.recorded())} record a variable's value" if cs.recorded() else "")
            + ".")


def header(cs: ConfigStudy) -> list[str]:
    return ["Result", *cs.variables, "n", "Mean", "Stddev", "95% CI low", "95% CI high"]


def rows(cs: ConfigStudy, results: list[Result], limit: int = MAX_ROWS) -> tuple[list[list[str]], int]:
    """(table rows, rows left out past limit) of the results' points, in the runs' order."""
    out, total = [], 0
    for res in results:
        for combo in cs.combos:
            acc = res.points.get(combo)
            if acc is None:
                continue
            total += 1
            if len(out) >= limit:
                continue
            ci = acc.interval()
            out.append([res.heading(), *combo, str(acc.n), number(acc.mean), number(acc.stddev()),
                        number(ci[0]) if ci else "–", number(ci[1]) if ci else "–"])
    return out, total - len(out)


def constant_rows(cs: ConfigStudy) -> list[list[str]]:
    """The results that are the same in every run of the config: listed once, with their value."""
    return [[res.heading(), number(res.lo if res.lo <= res.hi else float("nan"))] for res in cs.constant()] + \
        [[res.heading(), f"the value of {cs.echoes(res)}"] for res in cs.recorded()]
