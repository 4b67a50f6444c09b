"""The Prefect flows against a real Prefect server on loopback: deployments served by
``python -m flows.serve``, runs started through the server's API as the UI's custom run
does, units run as task runs on a multi-process Dask cluster given by address."""

from __future__ import annotations

import numpy as np
import pytest

from flows.params import CatalogName, SiteName
from nampo import catalog, pipeline
from nampo.known_sites import KNOWN_SITES, load_site
from nampo.products import ALL
from nampo.store import Store
from tests.flows_fixtures import create_run, month, run_logs, task_runs, wait_for_run

pytestmark = pytest.mark.services

SITE = "harbour-mini"
FIRST, LAST = "2021-12", "2022-01"


def arrays(store: Store, first: str, last: str) -> dict[str, np.ndarray]:
    ds = store.open()
    out = {}
    for v in ALL:
        a = ds[v.name]
        if "time" in a.dims:
            a = a.sel(time=slice(first, last))
        out[v.name] = a.values
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.fixture(scope="module")
def reference(flows_stac, flows_home) -> Store:
    """The same period computed by the library in this process: what every flow run's
    store must equal."""
    store = Store(flows_home / "reference.zarr")
    spec = pipeline.CatalogSpec("local", flows_stac.url)
    report = pipeline.process(load_site(SITE), month(FIRST), month(LAST), store=store, spec=spec)
    assert not report.failed, report.failed
    return store


def test_parameter_choices_match_the_library():
    assert set(SiteName.__args__) == set(KNOWN_SITES)
    assert set(CatalogName.__args__) == set(catalog.PROFILES)


def backfill_params(store, cluster_address, **extra) -> dict:
    return {
        "site": SITE,
        "first_month": FIRST,
        "last_month": LAST,
        "store": str(store),
        "cluster": cluster_address,
        **extra,
    }


def test_backfill_from_the_api_then_again_skips_every_unit(
    prefect, served, cluster, reference, flows_home
):
    api, dep = prefect.api_url, served["backfill"]
    store = Store(flows_home / "api.zarr")
    response = create_run(api, dep, backfill_params(store.location.url, cluster))
    assert response.status_code == 201, response.text
    run = wait_for_run(api, response.json()["id"])
    assert run["state_type"] == "COMPLETED", run_logs(api, run["id"])
    site = load_site(SITE)
    units = len(site.tiles) * 3  # baseline + two months per tile
    tasks = task_runs(api, run["id"])
    assert sorted(t["name"] for t in tasks) == sorted(store.done())
    assert len(tasks) == units and all(t["state_type"] == "COMPLETED" for t in tasks)
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))

    again = wait_for_run(
        api, create_run(api, dep, backfill_params(store.location.url, cluster)).json()["id"]
    )
    assert again["state_type"] == "COMPLETED"
    assert task_runs(api, again["id"]) == []
    runs = store.runs()
    assert len(runs) == 2
    last = runs[max(runs)]
    assert set(last["units"].values()) == {"skipped"} and len(last["units"]) == units
    assert_same(arrays(store, FIRST, LAST), arrays(reference, FIRST, LAST))


@pytest.mark.parametrize(
    "bad",
    [
        {"last_month": "2022-13"},
        {"first_month": "Dec 2021"},
        {"site": "atlantis"},
        {"catalog": "google"},
        {"max_cloud": 140},
        {"workers": 0},
    ],
)
def test_the_server_refuses_parameters_of_the_wrong_shape(prefect, served, flows_home, bad):
    params = {**backfill_params(flows_home / "never.zarr", None), **bad}
    response = create_run(prefect.api_url, served["backfill"], params)
    assert response.status_code in (409, 422), response.text
    assert next(iter(bad)) in response.text  # the message names the parameter
    assert not (flows_home / "never.zarr").exists()


def test_a_period_ending_before_it_starts_fails_before_any_unit(prefect, served, flows_home):
    store = flows_home / "backwards.zarr"
    params = backfill_params(store, None, first_month="2022-02", last_month="2021-12")
    response = create_run(prefect.api_url, served["backfill"], params)
    assert response.status_code == 201, response.text
    run = wait_for_run(prefect.api_url, response.json()["id"])
    assert run["state_type"] == "FAILED"
    assert "before it starts" in run["state"]["message"]
    assert task_runs(prefect.api_url, run["id"]) == []
    assert not store.exists()
