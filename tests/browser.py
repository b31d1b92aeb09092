"""Driving Airflow 3.3's UI in Debian's Chromium through Playwright, the way a person clicks.

`AirflowUI` wraps one logged-in page: the connection form, the connection list's Test button,
the trigger form, a run's page and a task's log. Locators are the UI's own labels and roles, so a
test reads like the steps a person takes; what it returns is what the page shows.
Screenshots go to tests/screenshots/ (git-ignored), one file per `shot(name)`.
"""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Iterator

from playwright.sync_api import Browser, Download, Locator, Page, expect, sync_playwright

from conftest import REPO

CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by deploy/ensure-chromium.sh; nothing is downloaded
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "tests" / "screenshots"
ACTION_TIMEOUT_MS = 60_000  # one click or one page on a loaded 2-core machine
expect.set_options(timeout=ACTION_TIMEOUT_MS)  # what a page shows after that click, too (5 s by default)
CONNECTION_TYPE = "Storage backend (simpost)"
STANDARD_LABELS = ("Backend description", "Backend token")  # the rest are Extra Fields


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class AirflowUI:
    """One browser tab on one Airflow; every method is a few clicks a person would make."""

    def __init__(self, browser: Browser, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.context = browser.new_context(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(ACTION_TIMEOUT_MS)

    def close(self) -> None:
        self.context.close()

    def go(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def shot(self, name: str) -> Path:
        """A full-page screenshot once the page has settled (no dialog or toast still sliding in)."""
        self.page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running'"
                                    " || a.effect?.getTiming().iterations === Infinity)")  # spinners never end
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def login(self, username: str, password: str) -> None:
        self.go("/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("link", name="Dags")).to_be_visible()

    def text(self, locator: Locator | None = None, typed_passwords: bool = True) -> str:
        """Everything in `locator` (the page by default) a person can read, field values included.

        `typed_passwords=False` leaves out what the person typed into masked inputs themselves.
        """
        locator = locator or self.page.locator("body")
        fields = "input:not([type=password]), textarea" if not typed_passwords else "input, textarea"
        values = locator.locator(fields).evaluate_all("els => els.map(e => e.value)")
        return (locator.inner_text() + "\n" + "\n".join(values)).replace("\xa0", " ")  # the JSON editor's spaces

    # --- connections ---------------------------------------------------------------------
    def open_new_connection_form(self, conn_id: str) -> Locator:
        """Admin > Connections > Add Connection, with the id typed and the storage_backend type chosen."""
        self.go("/connections")
        self.page.get_by_role("button", name="Add Connection").click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_label("Connection ID").fill(conn_id)
        dialog.get_by_role("combobox").first.click()
        self.page.keyboard.type(CONNECTION_TYPE)
        self.page.keyboard.press("Enter")
        expect(dialog.get_by_text("Standard Fields", exact=True)).to_be_visible()
        return dialog

    @staticmethod
    def section(dialog: Locator, title: str) -> None:
        """Open one accordion section of the connection form (only one is open at a time)."""
        trigger = dialog.get_by_role("button", name=title, exact=True)
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        expect(trigger).to_have_attribute("aria-expanded", "true")

    def field(self, dialog: Locator, label: str) -> Locator:
        """The form row (label, input, hint) whose label reads `label` (a required star aside)."""
        name = self.page.locator("label").filter(has_text=re.compile(rf"^{re.escape(label)}\s*\*?\s*$"))
        return dialog.get_by_role("group").filter(has=name)

    def fill_backend(self, dialog: Locator, fields: dict[str, str | int | bool]) -> None:
        """Type into the fields by their labels (standard fields first, then Extra Fields)."""
        standard = {k: v for k, v in fields.items() if k in STANDARD_LABELS}
        extra = {k: v for k, v in fields.items() if k not in standard}
        for section, values in (("Standard Fields", standard), ("Extra Fields", extra)):
            self.section(dialog, section)
            for label, value in values.items():
                row = self.field(dialog, label)
                if isinstance(value, bool):
                    if row.locator("input").is_checked() != value:
                        row.locator("[data-part=control]").click()
                else:
                    row.locator("input, textarea").first.fill(str(value))

    def save(self, dialog: Locator) -> None:
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden()

    def connection_row(self, conn_id: str) -> Locator:
        self.go("/connections")
        row = self.page.get_by_role("row").filter(has=self.page.get_by_text(conn_id, exact=True))
        expect(row).to_be_visible()
        return row

    def open_edit_form(self, conn_id: str) -> Locator:
        self.connection_row(conn_id).get_by_role("button", name="Edit Connection").click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_text("Standard Fields", exact=True)).to_be_visible()
        return dialog

    def press_test(self, conn_id: str) -> str:
        """The Test button of the connection's row; returns the toast it raises (title and message)."""
        row = self.connection_row(conn_id)
        toasts = self.page.locator("[data-scope=toast][data-part=root]")
        before = toasts.count()
        row.get_by_role("button", name="Test Connection").click()
        expect(toasts).to_have_count(before + 1)
        self.page.mouse.move(0, 0)  # the button's tooltip would cover the next row's buttons
        return toasts.last.inner_text()

    def delete_connection(self, conn_id: str) -> None:
        self.connection_row(conn_id).get_by_role("button", name="Delete Connection").click()
        self.page.get_by_role("dialog").get_by_role("button", name=re.compile("^(Yes, )?Delete")).click()
        expect(self.page.get_by_role("row").filter(has=self.page.get_by_text(conn_id, exact=True))).to_have_count(0)

    # --- runs ----------------------------------------------------------------------------
    def open_trigger_form(self, dag_id: str) -> Locator:
        self.go(f"/dags/{dag_id}")
        self.page.get_by_role("button", name="Trigger").first.click()
        dialog = self.page.get_by_role("dialog")
        expect(dialog.get_by_text("Run Parameters")).to_be_visible()
        return dialog

    @staticmethod
    def param(dialog: Locator, name: str) -> Locator:
        return dialog.locator(f"#element_{name}")

    @staticmethod
    def required_params(dialog: Locator) -> set[str]:
        """Names of the Run Parameters whose label carries the required star."""
        labels = dialog.locator("[data-scope=field][data-part=root]:has([id^=element_]) label").all_inner_texts()
        return {text.replace("*", "").strip() for text in labels if "*" in text}

    def trigger(self, dialog: Locator) -> str:
        """Press the form's Trigger; the UI moves to the new run's page. Returns the run id."""
        dialog.get_by_role("button", name="Trigger", exact=True).click()
        self.page.wait_for_url(re.compile(r"/runs/[^/]+$"))
        return self.page.url.rsplit("/runs/", 1)[1]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 600) -> str:
        """The run's page until its state badge reads Success or Failed (the page polls by itself)."""
        self.go(f"/dags/{dag_id}/runs/{run_id}")
        badge = self.page.get_by_role("heading", name=run_id, exact=True).locator("xpath=..").get_by_test_id(
            "state-badge")
        expect(badge).to_have_text(re.compile(r"^(Success|Failed)$"), timeout=timeout_s * 1000)
        state = badge.inner_text()
        self.page.reload()  # the task table refreshes on its own schedule; show it as of now
        expect(badge).to_have_text(state)
        expect(self.page.get_by_test_id("table-list").get_by_role("row").nth(1)).to_be_visible()
        return state

    def task_states(self) -> dict[str, str]:
        """Task id -> state as the run page's Task Instances table shows them."""
        rows = self.page.get_by_test_id("table-list").get_by_role("row").all()
        states = {}
        for row in rows:
            cells = row.get_by_role("cell").all_inner_texts()
            if len(cells) > 3 and cells[1].strip():
                states[cells[1].strip()] = cells[3].strip()
        return states

    def open_task(self, task_id: str) -> None:
        """From the run's page: the task in the Task Instances table."""
        self.page.get_by_test_id("table-list").get_by_role("link", name=task_id, exact=True).click()
        expect(self.page.get_by_role("heading", name=task_id)).to_be_visible()

    def task_log(self, dag_id: str, run_id: str, task_id: str, expected: str | re.Pattern) -> str:
        """The task's Logs tab, once `expected` shows in it (logs arrive while the page is open)."""
        self.go(f"/dags/{dag_id}/runs/{run_id}/tasks/{task_id}")
        log = self.page.get_by_text(expected).first
        expect(log).to_be_visible()
        return self.page.locator("body").inner_text()

    def run_note_share_link(self) -> Locator:
        """On a run's page: the link in the run's note, right under the run's header."""
        link = self.page.get_by_text("Share link:", exact=True).locator("xpath=..").get_by_role("link")
        expect(link).to_be_visible()
        return link

    def run_note_line(self, lead: str, timeout_s: float = 60) -> str:
        """On a run's page: the note's line whose bold lead is `lead`, as shown. The note may be
        written just after the run's state changed (a failure callback), so the page is reloaded
        until it shows, within the timeout."""
        line = self.page.get_by_text(lead, exact=True).locator("xpath=..")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                expect(line).to_be_visible(timeout=5000)
                return line.inner_text()
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                self.page.reload()

    def task_share_link(self) -> Locator:
        """On a task's page: Details tab > Extra Links > Share link."""
        self.page.get_by_role("link", name="Details", exact=True).click()
        link = self.page.get_by_role("link", name="Share link")
        expect(link).to_be_visible()
        return link

    def download(self, link: Locator) -> Download:
        """Follow a share link as a person does: it opens local_cloud's page (the run, its report) in
        a new tab, whose Download button gives the archive."""
        with self.page.context.expect_page() as opened:
            link.click()
        share = opened.value
        expect(share.locator("iframe")).to_have_attribute("sandbox", "allow-scripts")  # the report sandboxed: its one chart script, nothing else
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        share.screenshot(path=str(SCREENSHOTS / "share-page.png"))
        with share.expect_download() as download:
            share.get_by_role("link", name=re.compile("^Download")).click()
        share.close()
        return download.value
