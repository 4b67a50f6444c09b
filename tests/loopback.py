"""A small threaded HTTP server on 127.0.0.1 for catalog tests: replays and faults.

A test gives a function that maps each :class:`Seen` request to a :class:`Reply`; the
server records every request (with its arrival time) so tests can count them and measure
the waits between them. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    """The JSON body (None when there is none)."""
    at: float
    """time.monotonic() on arrival."""


@dataclass
class Reply:
    """What to answer."""

    status: int = 200
    body: Any = None
    """A str/bytes body, or anything else, sent as JSON."""
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0
    """Seconds to wait before answering (the server's close() cuts it short)."""


class LoopbackServer:
    """``with LoopbackServer(handler) as server: ... server.url ... server.seen``."""

    def __init__(self, handler: Callable[[Seen], Reply]) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self._closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    json.loads(raw) if raw else None,
                    time.monotonic(),
                )
                outer.seen.append(seen)
                reply = outer.handler(seen)
                if reply.stall and outer._closing.wait(reply.stall):
                    return
                body = reply.body
                if not isinstance(body, str | bytes):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def requests(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        return [
            s
            for s in self.seen
            if (method is None or s.method == method) and (path is None or s.path == path)
        ]

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------- recorded responses


ES_ROOT = "https://earth-search.aws.element84.com/v1"
PC_ROOT = "https://planetarycomputer.microsoft.com/api/stac/v1"


def recorded(folder: Path, name: str, root: str | None = None, to: str | None = None) -> Any:
    """A recorded response from `folder`, with the API root `root` rewritten to `to`.

    Only the API's own links change (landing page links, ``next`` links, self links);
    asset hrefs point at object stores, not at the API, and stay as recorded.
    """
    text = (folder / name).read_text()
    if root is not None and to is not None:
        text = text.replace(root.rstrip("/"), to.rstrip("/"))
    return json.loads(text)


def next_link(page: dict) -> dict | None:
    return next((ln for ln in page.get("links", []) if ln.get("rel") == "next"), None)


class Replay:
    """Answers like a recorded STAC API: its landing page, then its search pages in order.

    The first search request (no paging token) gets ``pages[0]``; a request that follows
    the ``next`` link of ``pages[i]`` (the same POST body, or the same GET query) gets
    ``pages[i + 1]``. Any other request gets 404, so a client that does not follow the
    recorded link fails the test. Set ``url`` to the server's URL before the first request.
    """

    def __init__(self, folder: Path, root: str, landing: str, pages: list[str]) -> None:
        self.folder, self.root, self.landing, self.pages = folder, root, landing, pages
        self.url = ""

    def load(self, name: str) -> Any:
        return recorded(self.folder, name, self.root, self.url)

    def _follows(self) -> dict[tuple, int]:
        keys: dict[tuple, int] = {}
        for index, name in enumerate(self.pages[:-1]):
            link = next_link(self.load(name))
            if link is None:
                continue
            parts = urlsplit(link["href"])
            if link.get("method", "GET").upper() == "POST":
                keys[("POST", parts.path, json.dumps(link.get("body"), sort_keys=True))] = index + 1
            else:
                keys[("GET", parts.path, json.dumps(parse_qs(parts.query), sort_keys=True))] = (
                    index + 1
                )
        return keys

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path in ("", "/"):
            return Reply(body=self.load(self.landing))
        follows = self._follows()
        if seen.method == "POST":
            key = ("POST", seen.path, json.dumps(seen.body, sort_keys=True))
        else:
            key = ("GET", seen.path, json.dumps(seen.query, sort_keys=True))
        if key in follows:
            return Reply(body=self.load(self.pages[follows[key]]))
        is_first = seen.path == "/search" and not (
            (seen.body or {}).get("next") or (seen.body or {}).get("token") or seen.query
        )
        if is_first:
            return Reply(body=self.load(self.pages[0]))
        return Reply(404, {"code": "NotFound", "description": f"not recorded: {key}"})


class Faulty:
    """Wraps a handler: the first requests to (method, path) get the given faults in turn
    (None: let that one through), the later ones the wrapped handler's answer."""

    def __init__(self, inner: Callable[[Seen], Reply], faults: dict[tuple, list]) -> None:
        self.inner = inner
        self.faults = {key: list(replies) for key, replies in faults.items()}

    def __call__(self, seen: Seen) -> Reply:
        queue = self.faults.get((seen.method, seen.path))
        fault = queue.pop(0) if queue else None
        return fault if fault is not None else self.inner(seen)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def refuse_other_hosts(monkeypatch) -> None:
    """Make any name lookup other than loopback fail at once (no DNS query leaves)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK_NAMES:
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback only, not {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
