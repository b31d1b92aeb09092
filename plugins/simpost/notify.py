"""What the user's e-mail and the simulator's callback say, for a finished or a failed run."""
from __future__ import annotations

import html

SIMRUN_FIGURES = ("events", "sim_time", "elapsed", "ev_per_sec", "simsec_per_sec", "ev_per_simsec",
                  "messages_created")


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of an error, bounded: enough to act on, never a stack trace in a mail."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(title: str, simulation_id: str) -> str:
    return f"{title} ({simulation_id})" if title else simulation_id


def success_payload(simulation_id: str, upload: dict, simrun: dict | None) -> dict:
    return {
        "simulation_id": simulation_id,
        "state": "success",
        "link": upload["link"],
        "sha256": upload["sha256"],
        "size": upload["size"],
        "expires_at": upload.get("expires_at"),
        "simrun": {k: (simrun or {}).get(k) for k in SIMRUN_FIGURES},
    }


def failure_payload(simulation_id: str, failed_task: str, reason: str) -> dict:
    return {"simulation_id": simulation_id, "state": "failed", "failed_task": failed_task, "reason": reason,
            "link": None}


def mail(title: str, payload: dict) -> tuple[str, str]:
    """(subject, html body) for either payload kind."""
    label = _label(title, payload["simulation_id"])
    if payload["state"] == "success":
        subject = f"[simpost] {label}: results ready"
        rows = [("Download", f'<a href="{html.escape(payload["link"])}">{html.escape(payload["link"])}</a>'),
                ("Size", f'{payload["size"]:,} bytes'), ("SHA-256", payload["sha256"]),
                ("Link expires", payload["expires_at"] or "never")]
        rows += [(k.replace("_", " "), "not in log" if v is None else str(v))
                 for k, v in payload["simrun"].items()]
        lead = f"The results of simulation {html.escape(label)} are ready."
    else:
        subject = f"[simpost] {label}: post-processing failed"
        rows = [("Failed task", payload["failed_task"]), ("Reason", payload["reason"])]
        lead = f"Post-processing of simulation {html.escape(label)} failed at task {html.escape(payload['failed_task'])}."
    table = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{v if k == 'Download' else html.escape(v)}</td></tr>"
                    for k, v in rows)
    return subject, f"<p>{lead}</p><table>{table}</table>"
