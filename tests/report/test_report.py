# ruff: noqa: F811 (fixtures imported from the modules that define them)
"""The site report (`nampo report`) of the mini scenario's store, opened as an analyst
opens it: from disk in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright, as tests/flows/test_flows_ui.py does; no browser is downloaded, and any request that
leaves the report's folder is a failure: the page must work offline).

The numbers on the page are held against the store read independently (xarray and
rasterio here, not the report's code), and the reports of an empty and of a partly
processed store say what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
import xarray as xr
from playwright.sync_api import expect
from rasterio.features import rasterize
from rio_cogeo.cogeo import cog_validate

from nampo import cli
from nampo.analysis.dating import TYPES
from nampo.analysis.events import save_events, site_events
from nampo.io.store import Store
from nampo.products.variables import CLASSES
from nampo.report import build_report
from nampo.run.units import months
from nampo.scenario.known_sites import change_params, truth_score
from tests.flows.test_flows_ui import browser, shots  # noqa: F401 (fixtures)
from tests.flows_fixtures import REPO
from tests.truth_harness import MINI_FIRST, MINI_LAST

pytestmark = pytest.mark.services

MINI_CHANGE = change_params("harbour-mini")
"""The mini site's seasons, as the report's callers give them (nampo report, the flow)."""


@pytest.fixture(scope="module")
def mini_report(mini_store, mini_site, mini_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "harbour-mini"
    score = truth_score(mini_archive.path)
    return build_report(mini_store, out, mini_site, change=MINI_CHANGE, score=score)


@pytest.fixture(scope="module")
def store_events(mini_store, mini_site):
    """The store's events, computed here with nampo.analysis.events (not read from the report)."""
    return site_events(mini_store, MINI_FIRST, MINI_LAST, mini_site.facilities)[1]


class Page:
    """The report opened from disk, with everything the browser complained about."""

    def __init__(self, browser, index: Path) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.route("**/*", self._only_the_folder)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.goto(index.as_uri(), wait_until="load")

    def _only_the_folder(self, route) -> None:
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, msg) -> None:
        if msg.type in ("error", "warning"):
            self.errors.append(f"console {msg.type}: {msg.text}")

    def broken_images(self) -> list[str]:
        return self.page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.getAttribute('src'))"
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser, mini_report):
    page = Page(browser, mini_report.index)
    try:
        yield page
    finally:
        page.close()


def event_rows(page) -> list[dict]:
    return page.evaluate(
        """Array.from(document.querySelectorAll('#events-table tbody tr')).map(r => {
             const c = Array.from(r.cells).map(td => td.textContent.trim());
             return {id: c[0], type: c[1], facility: c[2], area: c[3], start: c[4], end: c[5],
                     date: c[6], classes: c[7], confidence: c[8],
                     href: r.cells[0].querySelector('a').getAttribute('href')};
           })"""
    )


def test_the_report_opens_offline_with_every_image_and_the_store_events(
    opened,
    mini_report,
    mini_site,
    store_events,
    shots,
):
    page = opened.page
    images = page.locator("img")
    # overview, one per event, one per facility of the mini site (quay, north, river)
    assert images.count() == 1 + len(store_events) + 3
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert opened.broken_images() == []
    assert opened.errors == [] and opened.outside == []

    rows = event_rows(page)
    assert [r["id"] for r in rows] == [e.id for e in store_events]
    assert len(store_events) >= 4  # the mini scenario's land-cover events are found
    for r, e in zip(rows, store_events, strict=True):
        assert (r["type"], r["facility"]) == (e.type, e.facility or "")
        assert r["href"] == f"#{e.id}"
        # the link leads to the event's section, whose chips image has loaded
        chip = page.locator(f"section#{e.id} img")
        assert chip.evaluate("i => i.naturalWidth") > 1000
        # said as an analyst would: at the facility's title, with the confidence
        said = page.locator(f"section#{e.id} p.said").inner_text()
        assert said.endswith(f"(confidence {e.confidence:.2f}).") and "built to built" not in said
        if e.facility:
            title = dict((n, t) for n, t, _ in mini_site.facilities)[e.facility]
            assert f"at the {title[:1].lower()}{title[1:]}" in said, said

    # sorting: by area, largest first after two clicks
    header = page.locator("#events-table").get_by_role("columnheader", name="area, m²")
    header.click()
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    areas = [float(r["area"].replace(",", "")) for r in event_rows(page)]
    assert areas == sorted((e.area_m2 for e in store_events), reverse=True)

    # the scenario's score is on the page
    assert page.locator("#score-table tr").count() >= 2
    shot = shots / "report.png"
    page.locator("#events-table").get_by_role("columnheader", name="id", exact=True).click()
    page.screenshot(path=str(shot), full_page=True)
    top = shots / "report-top.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(top))
    print(f"\nscreenshots of the report: {shot} (whole page), {top} (first screen)")


def facility_areas(store: Store, site, name: str) -> dict[str, dict[str, float]]:
    """Per month: hectares of each land-cover class in a facility, read with xarray and
    rasterio (pixel centres in the outline), not with the report's code."""
    outline = next(o for n, _, o in site.facilities if n == name)
    g = site.grid
    mask = rasterize([(g.from_lonlat(outline), 1)], out_shape=g.shape, transform=g.transform)
    ds = xr.open_zarr(store.url, mask_and_scale=False)
    out = {}
    for m in months(MINI_FIRST, MINI_LAST):
        lc = ds["landcover"].sel(time=np.datetime64(m, "D")).values[mask == 1]
        out[f"{m:%Y-%m}"] = {c: (lc == k).sum() * g.resolution**2 / 1e4 for k, c in CLASSES.items()}
        out[f"{m:%Y-%m}"]["unseen"] = (lc == 0).sum() * g.resolution**2 / 1e4
    return out


def test_the_numbers_on_the_page_are_the_store_s(
    opened,
    mini_report,
    mini_store,
    mini_site,
    store_events,
    mini_archive,
):
    page = opened.page
    for r, e in zip(event_rows(page), store_events, strict=True):
        assert float(r["area"].replace(",", "")) == e.area_m2
        assert (r["start"], r["end"], r["date"]) == (
            e.window_start.isoformat(), e.window_end.isoformat(), e.date.isoformat()
        )  # fmt: skip
        assert float(r["confidence"]) == pytest.approx(e.confidence, abs=5e-4)
        assert r["classes"] == f"{e.class_before} → {e.class_after}"
    checked = 0
    for name, _, _ in mini_site.facilities:
        expected = facility_areas(mini_store, mini_site, name)
        cells = page.evaluate(
            """name => Array.from(document.querySelectorAll(
                 `table.series[data-facility="${name}"] tr[data-month]`)).map(r => [
                 r.dataset.month, Array.from(r.querySelectorAll('td[data-class]')).map(
                   td => [td.dataset.class, td.textContent])])""",
            name,
        )
        assert [m for m, _ in cells] == list(expected)
        for month, values in cells:
            for cls, text in values:
                assert float(text) == pytest.approx(expected[month][cls], abs=0.005), (
                    name, month, cls
                )  # fmt: skip
                checked += 1
    assert checked == 3 * 12 * 7
    # the score on the page is the score of the store's events
    from nampo.evaluation.score import score

    found = [{**e.properties(), "geometry": e.geometry} for e in store_events]
    overall = score(found, mini_archive.path).rows()[0]
    first = page.locator("#score-table tr").nth(1).locator("td")
    assert first.nth(0).inner_text() == "overall"
    assert int(first.nth(2).inner_text()) == overall["detected"]
    assert float(first.nth(3).inner_text()) == pytest.approx(overall["recall"], abs=0.005)
    assert float(first.nth(6).inner_text()) == pytest.approx(overall["precision"], abs=0.005)


def test_the_exports_are_cogs_gdal_reads_on_the_site_grid(mini_report, mini_store, mini_site):
    folder = mini_report.folder
    g = mini_site.grid
    for name in ("composite.tif", "composite-truecolour.tif", "change-type.tif", "change.tif"):
        valid, errors, _ = cog_validate(str(folder / name), quiet=True)
        assert valid, (name, errors)
        with rasterio.open(folder / name) as src:
            assert src.crs.to_epsg() == g.epsg and src.transform == g.transform, name
            assert (src.height, src.width) == g.shape
            assert all(src.descriptions), name
    data = mini_report.data
    m = data.overview.month
    ds = xr.open_zarr(mini_store.url, mask_and_scale=False).sel(time=np.datetime64(m, "D"))
    with rasterio.open(folder / "composite.tif") as src:
        np.testing.assert_array_equal(src.read(1), ds["last_red"].values)
        np.testing.assert_array_equal(src.read(3), ds["last_blue"].values)
    with rasterio.open(folder / "change-type.tif") as src:
        np.testing.assert_array_equal(src.read(1), data.change["type"].values)
        assert src.colormap(1)[0][3] == 0  # no change is transparent
    features = json.loads((folder / "events.geojson").read_text())["features"]
    assert [f["id"] for f in features] == [e.id for e in data.events]


def test_an_empty_store_s_report_says_what_is_missing(mini_site, tmp_path, browser, capsys):
    store = Store(tmp_path / "empty.zarr")
    store.create(mini_site, months(MINI_FIRST, MINI_LAST))
    out = tmp_path / "report"
    assert cli.main(["report", "--store", str(store.url), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no completed month" in printed and str(out / "index.html") in printed
    page = Page(browser, out / "index.html")
    try:
        text = page.page.inner_text("body")
        assert "The store has no completed month yet" in text
        assert "No composite to show" in text and "No events" in text
        assert page.broken_images() == [] and page.errors == []
    finally:
        page.close()
    assert not list(out.rglob("*.tif"))


def test_a_partly_processed_store_s_report_names_what_is_missing(
    mini_store,
    mini_site,
    browser,
    tmp_path,
):
    # the mini store without tile x01y01 (its chunks and records) and without the last
    # two months of tile x00y00 (their records: what a killed run leaves)
    copy = tmp_path / "partial.zarr"
    shutil.copytree(Path(mini_store.url), copy)
    for chunk in copy.glob("*/*.1.1"):
        chunk.unlink()
    shutil.rmtree(copy / "nampo" / "units" / "x01y01")
    for month in ("2022-05", "2022-06"):
        (copy / "nampo" / "units" / "x00y00" / f"{month}.json").unlink()
    report = build_report(Store(copy), tmp_path / "report", mini_site, change=MINI_CHANGE)
    text = report.index.read_text()
    assert "partly processed" in text
    assert "tile x01y01: baseline" in text and "tile x01y01: every month" in text
    assert "tile x00y00: 2022-05..2022-06" in text
    # the facilities on the missing tile have those months left out, not drawn as zero
    quay = next(f for f in report.data.facilities if f.name == "quay")
    assert "x01y01" in quay.tiles and quay.class_ha["built"][-1] is None
    assert all(v is None for v in quay.class_ha["water"])
    page = Page(browser, report.index)
    try:
        page.page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        assert page.broken_images() == [] and page.errors == []
        assert re.search(r"\d+ events \(click a column", page.page.inner_text("body"))
    finally:
        page.close()


def test_a_store_s_current_stored_events_are_reported_and_stale_ones_are_not(
    mini_store, mini_site, store_events, tmp_path
):
    copy = tmp_path / "with-events.zarr"
    shutil.copytree(Path(mini_store.url), copy)
    store = Store(copy)
    assert store_events, "the mini store has events"
    save_events(store, store_events)
    report = build_report(store, tmp_path / "current", mini_site, change=MINI_CHANGE)
    data = report.data
    assert data.events_source.startswith("events as stored in the store")
    assert [e.properties() for e in data.events] == [e.properties() for e in store_events]
    # the change map is their outlines on the site grid: each event's pixels, its type
    codes = {t: c for c, t in TYPES.items()}
    assert (data.change["type"].values > 0).sum() == sum(e.pixels for e in store_events)
    for e in store_events:
        assert codes[e.type] in np.unique(data.change["type"].values)
    with rasterio.open(report.folder / "change.tif") as src:
        day = src.read(1)
    assert np.isfinite(day).sum() == sum(e.pixels for e in store_events)
    assert "events as stored" in report.index.read_text()

    # stale: a unit completed after the events were stored (here: only the first event)
    save_events(store, store_events[:1])
    record = next((copy / "nampo" / "units").rglob("*.json"))
    later = time.time() + 3600
    os.utime(record, (later, later))
    stale = build_report(store, tmp_path / "stale", mini_site, change=MINI_CHANGE).data
    assert "dated the changes itself" in stale.events_source
    assert [e.id for e in stale.events] == [e.id for e in store_events]


def test_the_report_flow_publishes_the_events_and_a_link(
    prefect, prefect_env, flows_sites, mini_store, store_events, tmp_path
):
    """The flow (run as `nampo-flows demo` runs it, against the session's Prefect server)
    writes the report and publishes the events table and the report's link. The site
    comes from the flows' registry (`flows_sites`: without it the test passed only when
    a flow test of the same worker had filled the registry first)."""
    out = tmp_path / "flow-report"
    code = (
        "from flows.report import report; "
        f"print(report(site='harbour-mini', store={str(mini_store.url)!r}, out={str(out)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **prefect_env}, cwd=REPO,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(out / "index.html")
    found = httpx.post(
        f"{prefect.api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["events", "report"]}}, "sort": "CREATED_DESC"},
    ).json()
    latest = {}
    for a in found:
        latest.setdefault(a["key"], a)
    table = json.loads(latest["events"]["data"])
    assert [r["event"] for r in table] == [e.id for e in store_events]
    assert [r["area m2"] for r in table] == [round(e.area_m2) for e in store_events]
    assert latest["report"]["type"] == "markdown" or "link" in latest["report"]["type"]
    assert (out / "index.html").as_uri() in latest["report"]["data"]
