"""The ``nampo`` command line as a whole: ``nampo process`` checks the period, the catalog
and the store before it starts a Dask cluster, so a refused input starts no process."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from nampo.cli import main
from tests.loopback import ES_ROOT, LoopbackServer, Replay, Reply, Seen, refuse_other_hosts

PAGES = ["es_v1_search_s2l2a_landsat_page1.json", "es_v1_search_s2l2a_landsat_page2_empty.json"]
# A small outline around the point of the recorded Earth Search search (PROVENANCE.md).
BOULDER = {
    "type": "Polygon",
    "coordinates": [
        [[-105.11, 40.16], [-105.09, 40.16], [-105.09, 40.175], [-105.11, 40.175], [-105.11, 40.16]]
    ],
}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch) -> None:
    refuse_other_hosts(monkeypatch)


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


class _Watching:
    """Answers like the recorded Earth Search API and notes, at each request, which child
    processes this (the test's) process has: a local Dask cluster's are its children."""

    def __init__(self, inner: Replay) -> None:
        self.inner = inner
        self.children: list[set[int]] = []

    def __call__(self, seen: Seen) -> Reply:
        self.children.append(_children())
        return self.inner(seen)


@pytest.mark.parametrize(
    ("first", "last", "store", "why"),
    [
        ("2023-10", "2023-09", "site.zarr", "period ends (2023-09) before it starts (2023-10)"),
        ("2023-10", "2023-10", "a-file/site.zarr", "is not writable"),
    ],
    ids=["period", "store"],
)
def test_process_refuses_bad_input_before_any_cluster_starts(
    shared: Path, tmp_path: Path, capsys, first: str, last: str, store: str, why: str
) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder\n")
    outline = tmp_path / "boulder.geojson"
    outline.write_text(json.dumps(BOULDER))
    replay = Replay(shared / "data" / "real", ES_ROOT, "es_v1_landing.json", PAGES)
    watching = _Watching(replay)
    before = _children()
    with LoopbackServer(watching) as server:
        replay.url = server.url
        code = main(
            [
                "process",
                "--outline", str(outline), "--baseline", "2023-10",
                "--first", first, "--last", last,
                "--store", str(tmp_path / store),
                "--catalog", "earth-search", "--url", server.url,
                "--workers", "2",
            ]
        )  # fmt: skip
        searches = server.requests("POST", "/search")

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("nampo: error: ") and why in err, err
    if first <= last:
        # the catalog had its say (it has scenes) and no cluster process was running then;
        # the store's refusal came next, and ended the command
        assert searches and watching.children
        assert all(seen <= before for seen in watching.children), watching.children
    else:
        assert not server.seen  # refused before the catalog was asked
    assert _children() <= before
