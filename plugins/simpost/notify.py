"""What the user's e-mail says about a run's final event (simpost.result), success or failure.

Everything shown comes from files a simulation wrote or from the trigger conf: all of it is escaped.
"""
from __future__ import annotations

import html

KEY_SCALARS = 20  # rows of the mail's scalar table; the callback and the XCom carry all of them


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of an error, bounded: enough to act on, never a stack trace in a mail."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(final: dict) -> str:
    """Title and id on one line: a title is free text and must not break the mail's Subject header."""
    title, simulation_id = " ".join((final.get("title") or "").split()), final["simulation_id"]
    return f"{title} ({simulation_id})" if title else simulation_id


def _shown(value, name: str = "") -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    return f"{value:,} ({value / 2**20:,.1f} MiB)" if name.endswith("_bytes") and value >= 2**20 else f"{value:,}"


def _table(caption: str, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    head = "<tr>" + "".join(f"<th align='left'>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    return f"<h3>{html.escape(caption)}</h3><table cellpadding='3'>{head}{cells}</table>"


def _scalars(stats: dict) -> str:
    items = stats["items"][:KEY_SCALARS]
    if not items:
        return ""
    rows = [(i.get("title") or i["name"] + (f" {i['field']}" if i.get("field") else ""), i["module"] or "",
             _shown(i["value"]), i.get("unit") or "") for i in items]
    more = stats["count"] - len(items)
    caption = f"Key results ({len(items)} of {stats['count']}; all of them in the archive)" if more else "Key results"
    return _table(caption, rows, ("result", "module", "value", "unit"))


def mail(final: dict) -> tuple[str, str]:
    """(subject, html body) for a run's final event."""
    label = html.escape(_label(final))
    if final["state"] == "failed":
        subject = f"[simpost] {_label(final)}: post-processing failed"
        body = (f"<p>Post-processing of simulation {label} failed at stage {html.escape(final['stage'])}.</p>"
                + _table("Why", [("Stage", final["stage"]), ("Reason", final["reason"])]))
        return subject, body
    link = html.escape(final["link"])
    if final["event"] == "restored":
        subject = f"[simpost] {_label(final)}: archived results restored"
        body = (f"<p>The archived results of simulation {label} are back: <a href=\"{link}\">{link}</a></p>"
                + _table("Archive", [("Size", f"{final['size']:,} bytes"), ("SHA-256", final["sha256"]),
                                     ("Backend", final["backend"]),
                                     ("Restored until", final["expires_at"] or "kept")]))
        return subject, body
    subject = f"[simpost] {_label(final)}: results ready" + (
        ", with warnings (damaged input left out)" if final["state"] == "warning" else "")
    archive = [("Size", f"{final['size']:,} bytes"), ("SHA-256", final["sha256"]),
               ("Link expires", final["expires_at"] or "never")]
    body = (f"<p>The results of simulation {label} are ready: <a href=\"{link}\">{link}</a></p>"
            + _table("Archive", archive)
            + _scalars(final["scalar_stats"])
            + _table("Simulation run", [(k.replace("_", " "), _shown(v)) for k, v in final["sim_runtime_stats"].items()])
            + _table("Resources", [(k.replace("_", " "), _shown(v, k)) for k, v in final["resources"].items()])
            + _table("Stages (seconds)", [(k, _shown(v)) for k, v in final["stage_seconds"].items()]))
    if final["problems"]:
        body += "<h3>Damaged input, skipped</h3><ul>" + "".join(
            f"<li>{html.escape(p)}</li>" for p in final["problems"]) + "</ul>"
    return subject, body
