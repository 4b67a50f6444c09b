"""The Prefect UI, as a person uses it: headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright; no browser is downloaded) opens the UI of a real Prefect server on loopback,
goes to the backfill deployment, fills its custom-run form (the site: one added from an
outline and a facilities GeoJSON with `nampo site add`, picked from the dropdown), submits
it, and watches the run's page until its state badge says Completed. The store then holds
the month's units on the grid `--outline` derives, and the report deployment makes the
site's report from it.

It shares the session's Prefect server, STAC API, Dask cluster and serving process with
test_flows.py (tests/flows_fixtures.py) and writes a store of its own. Every request the
browser makes to a host other than loopback is aborted (the v2 UI asks an analytics host
on every load).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from nampo.io.store import Store
from nampo.run.schedule import strips
from nampo.run.units import BaselineUnit, Unit, parse_month
from nampo.sites import Site
from nampo.sites.registry import Registry
from tests.flows_fixtures import OUTLINE, OUTLINE_SITE, run_logs, start_run, task_runs, wait_for_run

pytestmark = pytest.mark.services

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
SITE = OUTLINE_SITE
MONTH = "2021-12"
RUN_TIMEOUT_MS = 420_000
"""From Submit to Completed: the serving process starts the run, which runs the site's eight
units (four tiles: baseline and one month) on the Dask cluster. About a minute on a quiet
machine; seen near three with both cores busy with other work."""
TERMINAL = re.compile(r"^\s*(Completed|Failed|Crashed|Cancelled)\s*$")


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    """Screenshots outlive the test (their paths are printed); only an empty folder goes."""
    folder = Path(tempfile.mkdtemp(prefix="nampo-ui-shots-"))
    yield folder
    if not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: infra/local/setup.sh installs Debian's chromium")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class UI:
    """One browser page on the Prefect UI, with what a failure message needs."""

    def __init__(self, browser, base_url: str, shots: Path, server_log: Path) -> None:
        self.base_url = base_url
        self.server_log = server_log
        self.shots = shots
        self.aborted: list[str] = []
        self.api_errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("response", self._note_api_error)

    def _only_loopback(self, route) -> None:
        url = route.request.url
        if urlparse(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.aborted.append(url)
            route.abort()

    def _note_api_error(self, response) -> None:
        if "/api/" in response.url and response.status >= 400:
            self.api_errors.append(
                f"{response.request.method} {response.url} -> {response.status}: "
                f"{response.text()[:500]}"
            )

    def param(self, label: str):
        """A parameter of the run form: the block holding its label and its input."""
        return self.page.locator(
            f"xpath=//label[normalize-space()='{label}']/ancestor::div[fieldset][1]"
        )

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def explain(self, what: str) -> str:
        """A failure message: what went wrong, a screenshot, the page's text, API errors."""
        try:
            shot = self.screenshot("failure")
            text = self.page.inner_text("body")[:3000]
        except Exception as err:  # the page itself may be gone
            shot, text = f"(no screenshot: {err})", "(no page text)"
        errors = "\n".join(self.api_errors) or "(none)"
        try:
            log = self.server_log.read_text(errors="replace")[-4000:]
        except OSError:
            log = "(no server log)"
        return (
            f"{what}\nURL: {self.page.url}\nscreenshot: {shot}\n"
            f"API errors seen by the page:\n{errors}\npage text:\n{text}\n"
            f"Prefect server log (end):\n{log}"
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def ui(browser, prefect, shots) -> Iterator[UI]:
    ui = UI(browser, prefect.url, shots, prefect.log)
    try:
        yield ui
    finally:
        ui.close()


def submit(ui: UI, attempts: int = 3) -> dict:
    """Click Submit, as a person would until the server takes the run: the flow run the
    server created. Right after start-up, Prefect's SQLite database is sometimes locked
    by the server's own services; the server answers 503 (retryable), the UI only shows
    "Unknown error while creating flow run." and keeps the form, so Submit again."""
    for attempt in range(1, attempts + 1):
        with ui.page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/create_flow_run")
        ) as info:
            ui.page.get_by_role("button", name="Submit", exact=True).click()
        response = info.value
        if response.status == 201:
            return response.json()
        if response.status != 503 or attempt == attempts:
            pytest.fail(ui.explain(f"the server did not create the run ({response.status})"))
        print(f"\nSubmit {attempt}: the server answered 503 (database busy); again")
        toast = ui.page.locator("[data-sonner-toast]", has_text="Unknown error")
        expect(toast).to_be_visible()
        toast.wait_for(state="detached", timeout=30_000)
    raise AssertionError("unreachable")


def test_a_backfill_of_one_month_started_from_the_ui_form_completes(
    ui, prefect, served, cluster, flows_home
):
    page, api = ui.page, prefect.api_url
    store_path = flows_home / "ui.zarr"
    registered = Registry(flows_home / "sites").site(SITE)
    tiles = [t.id for t in registered.tiles]
    expected = {BaselineUnit(t).id for t in tiles} | {Unit(parse_month(MONTH), t).id for t in tiles}
    # the task runs: a baseline a tile, then a month of a worker's strip of tiles (2 workers)
    named = {BaselineUnit(t).id for t in tiles} | {
        f"{s.tiles[0]}..{s.tiles[-1]}/{MONTH}" if len(s.tiles) > 1 else f"{s.tiles[0]}/{MONTH}"
        for s in strips(registered, 2)
    }
    try:
        # The UI's front page, then Deployments -> backfill -> Run -> Custom run.
        page.goto(ui.base_url)
        page.get_by_role("link", name="Deployments", exact=True).click()
        page.get_by_role("link", name="backfill", exact=True).click()
        page.wait_for_url(f"**/deployments/deployment/{served['backfill']}**")
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Custom run").click()
        page.wait_for_url("**/run?**")

        # The form drawn from the flow's typed parameters.
        ui.param("first_month").locator("textarea").fill(MONTH)
        ui.param("last_month").locator("textarea").fill(MONTH)
        site = ui.param("site (Optional)").get_by_role("button", name="Select site")
        site.click()
        page.get_by_role("option", name=SITE, exact=True).click()
        expect(site).to_have_text(SITE)
        texts = {"store (Optional)": str(store_path), "cluster (Optional)": cluster}
        for label, value in texts.items():
            block = ui.param(label)
            block.get_by_role("tab", name="str", exact=True).click()  # not None
            block.locator("textarea").fill(value)
        run_name = page.get_by_label("Run Name").input_value()
        assert run_name, "the form proposes no run name"

        created = submit(ui)
        page.get_by_role("button", name="View run").click()  # in the toast saying it started
        page.wait_for_url(f"**/runs/flow-run/{created['id']}**")
        run_id = created["id"]

        # The run's own page (its name in the breadcrumb): the header badge follows its state.
        expect(page.locator("[data-slot=breadcrumb-page]")).to_have_text(run_name)
        page.get_by_role("tab", name="Parameters").click()
        badge = page.locator(
            "xpath=//nav[.//*[@data-slot='breadcrumb-page']]/following-sibling::div[1]"
            "//*[@data-slot='badge']"
        ).first
        expect(badge).to_have_text(TERMINAL, timeout=RUN_TIMEOUT_MS)
        state = badge.inner_text().strip()
        if state != "Completed":
            pytest.fail(
                ui.explain(f"the run's badge says {state}")
                + "\nrun logs:\n"
                + run_logs(api, run_id)
            )
        expect(page.get_by_text(str(store_path))).to_be_visible()  # Parameters tab
        shot = ui.screenshot("completed-run")
        print(f"\nscreenshot of the completed run page: {shot}")
        # One month: each tile's baseline, named by its unit id, and each strip's month,
        # named by its tiles. (.first: the UI may show the count twice, header and panel.)
        page.get_by_role("tab", name="Task Runs").click()
        expect(page.get_by_text(f"{len(named)} Task runs").first).to_be_visible()
        for name in named:
            expect(page.get_by_text(name, exact=True)).to_be_visible()
        print(f"task runs: {ui.screenshot('task-runs')}")
    except (AssertionError, PlaywrightError) as err:  # pytest.fail is neither: it passes
        pytest.fail(ui.explain(f"{type(err).__name__}: {err}"))

    # What the UI showed, checked through the API and in the store.
    run = wait_for_run(api, run_id, timeout=30)
    assert run["state_type"] == "COMPLETED", run_logs(api, run_id)
    assert run["name"] == run_name
    assert run["deployment_id"] == served["backfill"]
    assert run["parameters"]["site"] == SITE
    assert run["parameters"]["first_month"] == run["parameters"]["last_month"] == MONTH
    assert run["parameters"]["store"] == str(store_path)
    assert run["parameters"]["cluster"] == cluster
    store = Store(store_path)
    assert store.done() == expected
    assert sorted(t["name"] for t in task_runs(api, run_id)) == sorted(named)
    # the site's grid is the one `nampo process --outline` derives from the same outline
    assert store.site.grid == Site.from_outline(SITE, OUTLINE, baseline=registered.baseline).grid
    assert store.site.name == SITE and store.site.tile_px == 64

    # and its report, from the report deployment
    out = flows_home / "ui-report"
    report = wait_for_run(
        api,
        start_run(api, served["report"], {"site": SITE, "store": str(store_path), "out": str(out)}),
    )
    assert report["state_type"] == "COMPLETED", run_logs(api, report["id"])
    page = (out / "index.html").read_text()
    assert registered.title in page and "Quay and yard" in page
