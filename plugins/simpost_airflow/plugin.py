"""simpost's AirflowPlugin for the Results view: the catalog's FastAPI app and its menu entry.

Registered through the `airflow.plugins` entry point like the storage_backends plugin (plugins/
itself is ignored by Airflow's loader). Every component loads plugins, so this module stays light:
the FastAPI app imports only FastAPI and the catalog, and Airflow's security module is imported on
the first request.
"""
from __future__ import annotations

import base64
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/simpost"
URL_ROUTE = "simpost-results"  # the UI shows the view at /plugin/simpost-results


def _icon(stroke: str, fill: str) -> str:
    """An archive box, as a data: URL (the UI shows it as an <img> in its side bar). An <img> cannot
    take the side bar's text colour, so the box is filled: it reads on the plain and the highlighted bar."""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="{fill}" stroke="{stroke}" '
           'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><rect x="3" y="4" width="18" height="4" '
           'rx="1"/><path d="M5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8"/><path d="M10 12h4"/></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def base_path() -> str:
    """[api] base_url's path, when Airflow is served below one ("" at the root)."""
    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def _href() -> str:
    """The page's path."""
    return f"{base_path()}{URL_PREFIX}/results"


class _LazyApp:
    """The FastAPI app, imported when the api-server mounts it (an ASGI app is any callable)."""

    async def __call__(self, scope, receive, send):
        from simpost_airflow.results_api import app

        await app(scope, receive, send)


class SimpostResultsPlugin(AirflowPlugin):
    name = "simpost_results"
    fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "simpost catalog"}]
    external_views = [{"name": "Results", "href": _href(), "destination": "nav", "url_route": URL_ROUTE,
                       "nav_top_level": True, "icon": _icon("#4a5568", "#f8fafc"), "icon_dark_mode": _icon("#e2e8f0", "#2d3748")}]
