"""What the user's e-mail says about a run's final event (simpost.result): success, warning or failure;
and the admin's mail when storage_verify finds archives with no copy left.

The words and units are the report's (omnetpp_results.display); simpost.mailbody renders them as the
mail's plain-text and HTML parts. Everything shown comes from files a simulation wrote or from the
trigger conf: it is data, escaped by the renderers.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from omnetpp_results import display
from omnetpp_results.resources import KEYS as SIMULATOR_KEYS
from omnetpp_results.resources import Resources
from omnetpp_results.runfigures import RunFigures
from omnetpp_results.simrun import FIGURES
from storage_backends.naming import remote_name
from storage_backends.s3_backend import MAX_LINK_SECONDS

from simpost.mailbody import Code, Link, MailContent, Section

KEY_SCALARS = 20  # rows of the mail's scalar table; the callback and the XCom carry all of them
FAIL_NOW = "AirflowFailException"
RESTORE_STAGE = "restore"  # the stage of a failed storage_restore run's event
RESTORE_ADVICE = ("Ask for the restore again: a restore that failed has let go of the archive. If it fails the "
                  "same way, forward this mail to the admin: the archived copy or the target backend needs a look.")
FOOTER = ("simpost post-processes OMNeT++ results. The archive's report.html shows every result as charts "
          "and tables and opens offline in any browser.")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of an error, bounded: enough to act on, never a stack trace in a mail."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- what each final event says ------------------------------------------------------------

def _label(final: dict) -> str:
    """Title and id on one line: a title is free text and must not break the mail's Subject header."""
    title, simulation_id = " ".join((final.get("title") or "").split()), final["simulation_id"]
    return display.plain(f"{title} ({simulation_id})" if title else simulation_id)


def content(final: dict, run_page: str | None = None, now: datetime | None = None) -> MailContent:
    """The mail about a run's final event; run_page is the run's page in Airflow, when known."""
    if final["state"] == "failed" and final.get("stage") == RESTORE_STAGE:
        return _restore_failed(final, run_page)
    if final["state"] == "failed":
        return _failure(final, run_page)
    if final["event"] == "restored":
        return _restored(final, run_page, now or datetime.now(timezone.utc))
    return _delivery(final, run_page, now or datetime.now(timezone.utc))


def _restored(final: dict, run_page: str | None, now: datetime) -> MailContent:
    """storage_restore brought an archived archive back to a hot backend, for a while."""
    label = _label(final)
    sections = (Section("Archive", rows=(
        ("Name", Code(remote_name(final.get("title") or "", final["simulation_id"], final["sha256"]))),
        ("Size", _size(final["size"])),
        ("SHA-256", Code(final["sha256"])),
        ("Backend", Code(final["backend"])),
        ("Link expires", link_expiry(final, now)))), _run(final, run_page))
    return MailContent(f"[simpost] {label}: archived results restored", "success", "Results restored", label,
                       f"The archived results of simulation {label} are back.",
                       Link("Download the results", final["link"]), sections, FOOTER)


def link_expiry(final: dict, now: datetime) -> str:
    """When the mail's link stops working (the event's expires_at); an S3 signed link cut to SigV4's
    limit says so, as its copy may be kept longer than its link works."""
    until = expiry(final.get("expires_at"), now)
    if signed_for_the_longest(final["link"]):
        until += f" (the link lasts {MAX_LINK_SECONDS // 86400} days, the longest an S3 signed link may)"
    return until


def signed_for_the_longest(link: str) -> bool:
    """An S3 presigned link at SigV4's limit: its expiry is the signature's, not the keep days'."""
    expires = parse_qs(urlsplit(link).query).get("X-Amz-Expires")
    return expires == [str(MAX_LINK_SECONDS)]


def _restore_failed(final: dict, run_page: str | None) -> MailContent:
    label = _label(final)
    sections = (Section("What happened", rows=(("Reason", final["reason"]),), alert=True),
                Section("What you can do", note=RESTORE_ADVICE), _run(final, run_page))
    return MailContent(f"[simpost] {label}: restore failed", "failed", "Restore failed", label,
                       f"The archived results of simulation {label} could not be restored.",
                       Link("Open the run in Airflow", run_page) if run_page else None, sections, FOOTER)


def _delivery(final: dict, run_page: str | None, now: datetime) -> MailContent:
    label, warned = _label(final), final["state"] == "warning"
    subject = f"[simpost] {label}: results ready" + (", with warnings (damaged input left out)" if warned else "")
    sections = []
    if warned:
        sections.append(Section("Damaged input, left out", items=tuple(final["problems"]), alert=True,
                                note="Some input was damaged; these results leave the damaged parts out."))
    sections.append(Section("Archive", rows=(
        ("Name", Code(remote_name(final.get("title") or "", final["simulation_id"], final["sha256"]))),
        ("Size", _size(final["size"])),
        ("SHA-256", Code(final["sha256"])),
        ("Expires", link_expiry(final, now)))))
    if final.get("copies"):
        sections.append(Section("Copies", header=("Backend", "State", "Link"), rows=tuple(
            (Code(c["backend"]), c["state"], Link("open", c["link"]) if c.get("link") else display.NONE)
            for c in final["copies"])))
    sections += [s for s in (_scalars(final["scalar_stats"]),) if s]
    logged = RunFigures(**{k: v for k, v in final["sim_runtime_stats"].items() if k in FIGURES})
    sections += [Section("Simulation run", rows=tuple(display.cmdenv_facts(logged))),
                 Section("Resources", rows=tuple(_resources(final["resources"]))),
                 _stage_times(final["stage_seconds"]), _run(final, run_page)]
    lead = (f"The results of simulation {label} are ready"
            + (", with some damaged input left out (listed below)." if warned else "."))
    return MailContent(subject, final["state"], "Results ready" + (", with warnings" if warned else ""), label,
                       lead, Link("Download the results", final["link"]), tuple(sections), FOOTER)


def _failure(final: dict, run_page: str | None) -> MailContent:
    label = _label(final)
    reason = final["reason"].removeprefix(f"{FAIL_NOW}: ")  # how a stage fails at once: no news to a person
    sections = [Section("What happened", rows=(("Stage", final["stage"]), ("Reason", reason)), alert=True),
                Section("What you can do", note=advice(final["reason"]))]
    if final.get("stage_seconds"):
        sections.append(_stage_times(final["stage_seconds"], "Stage times, up to the failure"))
    sections.append(_run(final, run_page))
    return MailContent(f"[simpost] {label}: post-processing failed", "failed", "Post-processing failed", label,
                       f"Post-processing of simulation {label} failed at stage {final['stage']}.",
                       Link("Open the run in Airflow", run_page) if run_page else None, tuple(sections), FOOTER)


def no_copy_left(archives: list[str], summary: str, run_page: str | None = None) -> MailContent:
    """The admin's one mail of a storage_verify run that found archives with no present copy:
    which ones (`<sha12> (<simulation id>)`), so they can be looked for elsewhere before anyone
    follows a dead link."""
    count = f"{len(archives)} archive{'s' if len(archives) != 1 else ''}"
    sections = (Section("Archives with no copy left", items=tuple(archives), alert=True,
                        note="Every copy the catalog knew of is lost, failed or gone: storage_verify "
                             "cannot copy these again."),
                Section("What you can do", note=LOST_ADVICE),
                Section("This verify run", rows=(("Summary", summary),)))
    return MailContent(f"[simpost] storage_verify: {count} with no copy left", "failed", "Archives lost",
                       count, f"storage_verify found {count} with no present copy on any backend.",
                       Link("Open the verify run in Airflow", run_page) if run_page else None, sections,
                       "Sent once per storage_verify run to the address in the Airflow Variable simpost_admin_email.")


LOST_ADVICE = ("Look for the archives on the services themselves (a trash bin, a snapshot, a backup), or ask "
               "the simulation's owner to run it again. `simpost where SIMULATION_ID` shows each copy's "
               "state and last error.")


#: known failure kinds (matched on the one-line reason, first match wins) and what the person can do
ADVICE = (
    (re.compile(r"^cancelled"), "The run was cancelled (marked failed with simpost cancel, the REST API or "
                                "the Airflow UI), so nothing was delivered. Trigger it again to get the results."),
    (re.compile(r"run timeout"), "The run took longer than its Run timeout (s) allows. Trigger it again with a "
                                 "larger run_timeout, or ask for less (statistics, graphs \"none\")."),
    (re.compile(r"no such connection"), "No storage backend of that name exists: check the Storage backend(s) "
                                        "field for a typo, or ask the admin which backends there are."),
    (re.compile(r"wrong api_key|wrong or expired token|refused the credentials|HTTP 40[13]\b"),
     "The backend's token was refused: ask the admin to renew the backend's token (its connection under "
     "Admin > Connections), then trigger the run again."),
    (re.compile(r"inactive|storage_backend_active"), "That storage backend is switched off: choose another "
                                                     "one, or ask the admin to switch it on."),
    (re.compile(r"results_dir|results folder|no OMNeT\+\+ result files|empty result file|results root"),
     "Check the results folder: it must lie under the results root and hold the simulation's .vec and "
     ".sca files (and its .vci, omnetpp.ini and Cmdenv log, if any)."),
)
DEFAULT_ADVICE = ("Try the run again; if it fails the same way, forward this mail to the admin: the stage's "
                  "log in Airflow says more.")


def advice(reason: str) -> str:
    return next((text for pattern, text in ADVICE if pattern.search(reason)), DEFAULT_ADVICE)


def expiry(expires_at: str | None, now: datetime) -> str:
    """13 Dec 2026 (in 7 days): the date a share link stops working, and how far off it is."""
    if not expires_at:
        return "never (kept until deleted)"
    when = datetime.fromisoformat(expires_at)
    days = round((when - now).total_seconds() / 86400)
    date = f"{when.day} {MONTHS[when.month - 1]} {when.year}"
    if when <= now:
        return f"{date} (expired)"
    return f"{date} ({'today' if days == 0 else 'tomorrow' if days == 1 else f'in {days} days'})"


def _size(nbytes: int) -> str:
    return f"{display.mib(nbytes)} ({nbytes:,} bytes)" if nbytes >= display.MIB else f"{nbytes:,} bytes"


def _scalars(stats: dict) -> Section | None:
    items = stats["items"][:KEY_SCALARS]
    if not items:
        return None
    rows = tuple((i.get("title") or i["name"] + (f" {i['field']}" if i.get("field") else ""),
                  Code(i["module"]) if i.get("module") else display.NONE,
                  "not recorded" if i["value"] is None else
                  display.figure(i["value"]) + (f" {i['unit']}" if i.get("unit") else "")) for i in items)
    more = stats["count"] - len(items)
    note = f"The first {len(items)} of {stats['count']:,}; all of them are in the archive's csv/ folder." if more else ""
    return Section("Key results", rows=rows, header=("Result", "Module", "Value"), numeric=(2,), note=note)


def _resources(res: dict) -> list[tuple[str, str]]:
    simulator = Resources(**{k: res.get(k) for k in SIMULATOR_KEYS})
    return display.resource_facts(simulator) + [
        (display.POST_TIME, display.seconds(res.get("postprocessing_wall_seconds")) + " (run start to this mail)"),
        (display.POST_PEAK, display.mib(res.get("postprocessing_peak_rss_bytes")) + " (largest stage)")]


def _stage_times(stage_seconds: dict, title: str = "Stage times") -> Section:
    return Section(title, rows=tuple((stage, display.seconds(s)) for stage, s in stage_seconds.items()))


def _run(final: dict, run_page: str | None) -> Section:
    rows = [("Simulation id", Code(final["simulation_id"])), ("Airflow run", Code(final["run_id"]))]
    if run_page:
        rows.append(("Run page", Link("open the run in Airflow", run_page)))
    return Section("Run", rows=tuple(rows))


