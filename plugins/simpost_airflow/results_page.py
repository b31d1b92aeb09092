"""The Results page: the catalog's archives and their copies as one self-contained HTML page.

Everything shown comes from the catalog, which holds what simulators sent (titles, ids) and what
services answered (links, errors): all of it is escaped, and a link becomes an anchor only when it
is an http(s) URL. The page loads nothing (inline CSS, one inline script allowed by its hash in the
CSP), so it works offline and inside Airflow's UI.

Airflow 3.3 shows an external view in an iframe sandboxed without `allow-popups`: a link with
`target="_blank"` is blocked there. The iframe is same-origin with the UI, so the script opens share
links through the top window instead; standalone, the links open a new tab on their own.

The script also runs the view's actions (results_actions.py) on the page's own API: Restore on an
archived archive, then its copies cell polled while it says Restoring...; New link on a copy whose
links expire. Their answers carry the cell's new HTML, rendered here as the page is, so the page and
its updates cannot drift apart. It sends `X-Requested-With`, which no cross-site form can send: the
API starts nothing for a request that only carries the login cookie.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from urllib.parse import urlencode, urlsplit

from simpost.catalog import Archive, Copy
from simpost_airflow.results_actions import FreshLink, RestoreView

STYLE = """
:root { color-scheme: light dark; --fg: #1d2330; --muted: #5b6375; --bg: #f4f5f7; --card: #fff; --line: #d8dbe2;
        --accent: #1f6feb; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
        background: var(--bg); }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8ee; --muted: #9aa3b5; --bg: #14171d; --card: #1c2029; --line: #2e3441; --accent: #58a6ff; } }
body { margin: 0; padding: 1.2rem 1.6rem 2rem; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
p.lead { margin: 0 0 1rem; color: var(--muted); font-size: .92rem; }
form { display: flex; gap: .5rem; align-items: center; margin: 0 0 1rem; flex-wrap: wrap; }
label { font-size: .9rem; color: var(--muted); }
input[type=search] { font: inherit; padding: .4rem .6rem; min-width: 18rem; border: 1px solid var(--line);
                     border-radius: 6px; background: var(--card); color: var(--fg); }
button.inline { font-size: .8rem; padding: .1rem .6rem; margin-left: .4rem; }
button:disabled { opacity: .6; cursor: default; }
div.restore { margin: 0 0 .4rem; } div.restore .error { margin-top: .2rem; }
button, a.button { font: inherit; font-size: .9rem; padding: .4rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
                   background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; }
a.button.plain { background: transparent; color: var(--accent); }
table.archives { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line);
                 border-radius: 8px; overflow: hidden; font-size: .92rem; }
table.archives > thead th { text-align: left; font-weight: 600; color: var(--muted); font-size: .8rem;
                            text-transform: uppercase; letter-spacing: .03em; padding: .6rem .8rem;
                            border-bottom: 1px solid var(--line); }
table.archives > tbody > tr > td { padding: .7rem .8rem; border-bottom: 1px solid var(--line); vertical-align: top; }
table.archives > tbody > tr:last-child > td { border-bottom: 0; }
td.sim { font-weight: 600; overflow-wrap: anywhere; min-width: 8rem; }
td.num { white-space: nowrap; text-align: right; }
td.when { white-space: nowrap; }
.small { color: var(--muted); font-size: .8rem; font-weight: 400; }
code { font-size: .8rem; }
table.copies { border-collapse: collapse; width: 100%; }
table.copies th { text-align: left; font-weight: 500; color: var(--muted); font-size: .75rem; padding: 0 .6rem .2rem 0;
                  white-space: nowrap; }
th.copies-col { width: 54%; }
table.copies td { padding: .2rem .6rem .2rem 0; vertical-align: baseline; }
td.link { white-space: nowrap; }
td.link a { color: var(--accent); }
.state { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .78rem; font-weight: 600;
         background: #e5e7eb; color: #374151; }
.state.present { background: #d1fae5; color: #065f46; } .state.pending { background: #e0e7ff; color: #3730a3; }
.state.failed { background: #fee2e2; color: #991b1b; } .state.lost { background: #ffedd5; color: #9a3412; }
.state.archived { background: #ede9fe; color: #5b21b6; } .state.restoring { background: #dbeafe; color: #1e40af; }
.count.short { color: #b45309; font-weight: 600; } .count.none { color: #b91c1c; font-weight: 600; }
.error { color: #b91c1c; font-size: .8rem; overflow-wrap: anywhere; }
table.copies tr.why td { padding-top: 0; }
p.empty { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; }
nav.pages { display: flex; gap: .5rem; margin-top: 1rem; }
"""
SCRIPT = """
var api = document.body.dataset.api;
function call(method, path) {
  return fetch(api + path, {method: method, credentials: "same-origin", headers: {"X-Requested-With": "simpost-results"}})
    .then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
        return body;
      });
    });
}
function say(cell, text) {
  var line = cell.querySelector("div.restore .error") || document.createElement("div");
  line.className = "error";
  line.textContent = text;
  (cell.querySelector("div.restore") || cell).appendChild(line);
}
function show(cell, body) {
  cell.innerHTML = body.html;
  cell.dataset.restoreState = body.state;
  if (body.state === "restoring") poll(cell);
}
function poll(cell) {
  setTimeout(function () {
    call("GET", "/archives/" + cell.dataset.restoreFor + "/restore").then(function (body) { show(cell, body); })
      .catch(function (e) { say(cell, e.message); poll(cell); });
  }, 3000);
}
document.addEventListener("click", function (event) {
  var restore = event.target.closest("button[data-restore]");
  if (restore) {
    var cell = restore.closest("[data-restore-for]");
    restore.disabled = true;
    call("POST", "/archives/" + cell.dataset.restoreFor + "/restore").then(function (body) { show(cell, body); })
      .catch(function (e) { restore.disabled = false; say(cell, e.message); });
    return;
  }
  var renew = event.target.closest("button[data-renew]");
  if (renew) {
    var copy = renew.closest("tr[data-backend]"), sha = renew.closest("[data-restore-for]").dataset.restoreFor;
    renew.disabled = true;
    call("GET", "/archives/" + sha + "/copies/" + encodeURIComponent(copy.dataset.backend) + "/link")
      .then(function (body) { copy.querySelector("td.link").innerHTML = body.html; })
      .catch(function (e) { renew.disabled = false; renew.title = e.message; });
    return;
  }
  var link = event.target.closest("a[data-share]");
  if (!link || window.top === window) return;
  try { window.top.open(link.href, "_blank", "noopener,noreferrer"); event.preventDefault(); } catch (e) { }
});
document.querySelectorAll("[data-restore-state=restoring]").forEach(poll);
"""


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


NO_RESTORE = RestoreView("")
LINK_PATH_SHOWN = 12  # the link's host and the start of its path; the whole link is its title

HEADERS = {
    "content-security-policy": (f"default-src 'none'; style-src {_sha256_source(STYLE)}; "
                                f"script-src {_sha256_source(SCRIPT)}; connect-src 'self'; img-src data:; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'self'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # share links are capabilities: never leak them as a Referer
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class Query:
    """What the page was asked for; `path` is the page's own URL path (for the form and paging)."""

    path: str
    search: str = ""
    simulation_id: str | None = None
    limit: int = 50
    offset: int = 0

    @property
    def api(self) -> str:
        """The API's path next to the page's (both under the plugin's mount, wherever that is)."""
        return self.path.removesuffix("/results") + "/api"

    def url(self, offset: int) -> str:
        params = {"q": self.search, "simulation_id": self.simulation_id, "offset": offset or None}
        query = urlencode({k: v for k, v in params.items() if v})
        return self.path + ("?" + query if query else "")


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    if moment.tzinfo is None:  # SQLite hands times back without their zone; the catalog writes UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _anchor(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        return f"<code>{escape(url)}</code>"
    parts = urlsplit(url)
    shown = parts.netloc + (parts.path if len(parts.path) <= LINK_PATH_SHOWN else parts.path[:LINK_PATH_SHOWN] + "…")
    href = escape(url, quote=True)
    return (f'<a href="{href}" target="_blank" rel="noopener noreferrer" data-share title="{href}">'
            f'{escape(shown)}</a>')


def _link(copy: Copy, renewable: bool = False) -> str:
    if not copy.link:
        return '<span class="small">no link</span>'
    renew = '<button type="button" class="inline" data-renew>New link</button>' if renewable else ""
    return _anchor(copy.link) + renew


def fresh_link(fresh: FreshLink) -> str:
    """A copy's link cell with a fresh link, as the New link button puts it."""
    return (f'{_anchor(fresh.link)}<button type="button" class="inline" data-renew>New link</button>'
            f'<div class="small">valid until {when(fresh.expires_at)}</div>')


def _restore(view: RestoreView) -> str:
    """The archive's restore, above its copies: what the catalog and its restore runs say."""
    if view.state == "archived":
        return ('<div class="restore"><span class="state archived">Archived</span>'
                '<button type="button" class="inline" data-restore>Restore</button></div>')
    if view.state == "restoring":
        return ('<div class="restore"><span class="state restoring">Restoring...</span> <span class="small">'
                "copying it back from the archive tier; its new link shows here when it is there</span></div>")
    if view.state == "restored":
        return (f'<div class="restore"><span class="state present">Restored until {when(view.copy.expires)}</span> '
                f'{_anchor(view.copy.link or "")} <span class="small">on {escape(view.copy.backend)}</span></div>')
    if view.state == "failed":
        return ('<div class="restore"><span class="state failed">Restore failed</span>'
                '<button type="button" class="inline" data-restore>Restore</button>'
                f'<div class="small">see run {escape(view.run_id or "")} of storage_restore</div></div>')
    return ""


def copies_cell(archive: Archive, view: RestoreView, renewable: set[str]) -> str:
    """The archive's Copies cell: its restore, then one row per copy (`renewable`: backends whose
    links the New link button renews)."""
    if not archive.copies:
        return '<span class="count none">no copy recorded</span>'
    rows = []
    for copy in sorted(archive.copies, key=lambda c: c.state != "present"):  # present first, then the rest
        state = escape(copy.state)
        backend = escape(copy.backend, quote=True)
        rows.append(f'<tr data-backend="{backend}"><td>{escape(copy.backend)}</td>'
                    f'<td><span class="state {state}">{state}</span></td>'
                    f'<td class="link">{_link(copy, copy.state == "present" and copy.backend in renewable)}</td>'
                    f'<td class="when">{when(copy.last_verified)}</td></tr>')
        if copy.last_error and copy.state != "present":  # why it is not there, under the copy, full width
            rows.append(f'<tr class="why" data-why-for="{backend}"><td></td><td colspan="3" class="error">'
                        f'{escape(copy.last_error)}</td></tr>')
    present = len(archive.present)
    short = " none" if present == 0 else (" short" if present < archive.copies_wanted else "")
    return (f'{_restore(view)}<div class="small count{short}">{present} of {archive.copies_wanted} wanted copies present</div>'
            '<table class="copies"><thead><tr><th>Backend</th><th>State</th><th>Link</th><th>Last verified</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _archive_row(archive: Archive, view: RestoreView, renewable: set[str]) -> str:
    title = escape(archive.title) if archive.title else '<span class="small">(no title)</span>'
    run = f'<div class="small">run {escape(archive.run_id)}</div>' if archive.run_id else ""
    return (f'<tr data-sha256="{escape(archive.sha256, quote=True)}">'
            f'<td class="sim">{escape(archive.simulation_id)}'
            f'<div class="small"><code title="SHA-256 {escape(archive.sha256)}">{escape(archive.sha256[:12])}</code></div></td>'
            f'<td>{title}{run}</td><td class="num" title="{archive.size} bytes">{size(archive.size)}</td>'
            f'<td class="when">{when(archive.created)}</td><td data-restore-for="{escape(archive.sha256, quote=True)}" '
            f'data-restore-state="{view.state}">{copies_cell(archive, view, renewable)}</td></tr>')


def render(archives: list[Archive], query: Query, more: bool, views: dict[str, RestoreView] | None = None,
           renewable: set[str] | None = None) -> str:
    """The page for one slice of the catalog (`more`: older archives follow; `views`: the restore of
    each archive that has one to show; `renewable`: backends whose links expire)."""
    views, renewable = views or {}, renewable or set()
    rows = "".join(_archive_row(a, views.get(a.sha256, NO_RESTORE), renewable) for a in archives)
    if archives:
        body = ('<table class="archives"><thead><tr><th>Simulation</th><th>Title</th><th>Size</th><th>Created</th>'
                f'<th class="copies-col">Copies</th></tr></thead><tbody>{rows}</tbody></table>')
    elif query.search or query.simulation_id or query.offset:
        body = '<p class="empty">No archive matches.</p>'
    else:
        body = '<p class="empty">The catalog holds no archive yet: each finished run of simulation_postprocess adds one.</p>'
    pages = []
    if query.offset:
        pages.append(f'<a class="button plain" href="{escape(query.url(max(query.offset - query.limit, 0)))}">'
                     "&lsaquo; Newer</a>")
    if more:
        pages.append(f'<a class="button plain" href="{escape(query.url(query.offset + query.limit))}">Older &rsaquo;</a>')
    clear = f'<a class="button plain" href="{escape(query.path)}">Show all</a>' if query.search or query.simulation_id else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Results · simpost</title><style>{STYLE}</style></head>
<body data-api="{escape(query.api, quote=True)}">
<h1>Results</h1>
<p class="lead">Every archive simpost made and where its copies are, newest first (from the simpost catalog).</p>
<form method="get" action="{escape(query.path)}" role="search">
<label for="q">Simulation id or title</label>
<input type="search" id="q" name="q" value="{escape(query.search, quote=True)}" placeholder="e.g. sim42">
<button type="submit">Search</button>{clear}
</form>
{body}
<nav class="pages">{"".join(pages)}</nav>
<script>{SCRIPT}</script>
</body></html>
"""


def refusal(status: int, reason: str, login_url: str) -> str:
    """The page for a request without a valid Airflow login: no catalog data, a way to log in."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Results · simpost</title><style>{STYLE}</style></head>
<body><h1>Results</h1><p class="empty">{escape(reason)} (HTTP {status}).
<a href="{escape(login_url, quote=True)}">Log in to Airflow</a>, then open Results from its menu.</p></body></html>
"""
