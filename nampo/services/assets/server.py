"""The cloud stand-in: a folder's files served over HTTP from 127.0.0.1 the way object
storage serves them (single byte ranges, HEAD, keep-alive), with a switchable fault layer
and a count of every request and byte (docs/cube.md, "Reading from the cloud").

It is test and benchmark infrastructure and an operator's convenience (``nampo stac up
--serve-assets``): production code reads whatever URL the catalog gives and never imports
this module.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from nampo.errors import ServiceError
from nampo.services.assets.faults import Faults

__all__ = ["AssetServer", "Served", "Traffic"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_SEND_CHUNK = 64 * 1024
_SLOW_DOWN = (
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


@dataclass(frozen=True)
class Served:
    """One request the server answered (or dropped)."""

    method: str
    path: str
    status: int
    """HTTP status sent; 0 for a dropped connection."""
    bytes: int
    """Body bytes sent."""


@dataclass(frozen=True)
class Traffic:
    """What the server sent since it started (or since :meth:`AssetServer.reset`)."""

    requests: int
    gets: int
    heads: int
    bytes: int
    """Body bytes sent."""
    statuses: dict[int, int]
    """Requests by status (0: dropped)."""
    files: int
    """Distinct files asked for."""


class AssetServer:
    """Files under `root` at ``http://127.0.0.1:PORT/<path relative to root>``.

    Parameters
    ----------
    root
        The folder served (nothing outside it is reachable).
    faults
        The fault layer; replace it at any time with ``server.faults = Faults(...)``.
    port
        Port on 127.0.0.1 (0: a free one).
    signed
        Require a signature in each URL's query (``se``: expiry, unix seconds; ``sig``),
        as Planetary Computer's SAS tokens do: no or a bad signature is 403, and so is an
        expired one. URLs are signed with :meth:`sign`.

    Examples
    --------
    >>> with AssetServer(Path("archive"), Faults(latency_ms=40)) as server:  # doctest: +SKIP
    ...     rasterio.open(server.url_of(Path("archive/items/x/B04.tif"))).read(1)
    ...     server.traffic().gets
    """

    def __init__(
        self,
        root: Path,
        faults: Faults = Faults(),  # noqa: B008 (frozen)
        *,
        port: int = 0,
        signed: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ServiceError(f"cannot serve {root}: not a folder")
        self.faults = faults
        self.signed = signed
        self.clock_offset = 0.0
        """Seconds added to the server's clock when it checks expiry (simulate the
        passing of a token's lifetime without waiting)."""
        self._key = secrets.token_bytes(16)
        self._served: list[Served] = []
        self._lock = threading.Lock()
        self._draws = random.Random(faults.seed)
        self._draws_for = faults
        self._burst = faults.burst
        self._closing = threading.Event()
        handler = _handler_for(self)
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ServiceError(f"cannot serve assets on 127.0.0.1:{port}: {exc}") from exc
        self._server.daemon_threads = True
        # A client that hangs up mid-answer (GDAL aborts a transfer it has enough of) is
        # normal traffic, not an error to print.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._server.request_queue_size = 64
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # ---------------------------------------------------------------------- addresses

    def url_of(self, path: Path | str) -> str:
        """The URL of a file under the root (signed when the server requires it)."""
        rel = Path(path).resolve().relative_to(self.root)
        url = f"{self.url}/{quote(rel.as_posix())}"
        return self.sign(url) if self.signed else url

    def sign(self, url: str, lifetime: float = 2700.0) -> str:
        """`url` with a fresh signature valid `lifetime` seconds (Planetary Computer's
        tokens last about 45 minutes); an old signature in it is replaced."""
        parts = urlsplit(url)
        expiry = int(self._now() + lifetime)
        sig = self._signature(unquote(parts.path), expiry)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?se={expiry}&sig={sig}"

    def _signature(self, path: str, expiry: int) -> str:
        return hmac.new(self._key, f"{path}|{expiry}".encode(), hashlib.sha256).hexdigest()[:32]

    def _now(self) -> float:
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------------ traffic

    def traffic(self) -> Traffic:
        with self._lock:
            served = list(self._served)
        statuses = Counter(s.status for s in served)
        return Traffic(
            requests=len(served),
            gets=sum(s.method == "GET" for s in served),
            heads=sum(s.method == "HEAD" for s in served),
            bytes=sum(s.bytes for s in served),
            statuses=dict(statuses),
            files=len({s.path for s in served}),
        )

    def served(self) -> list[Served]:
        with self._lock:
            return list(self._served)

    def reset(self) -> None:
        """Forget the requests served so far."""
        with self._lock:
            self._served.clear()

    def _record(self, served: Served) -> int:
        with self._lock:
            self._served.append(served)
            return len(self._served) - 1

    def _draw(self) -> str:
        """``ok``, ``error`` or ``drop`` for the next request, from the faults' seed."""
        faults = self.faults
        with self._lock:
            if faults is not self._draws_for:  # new faults: their own seed from now on
                self._draws = random.Random(faults.seed)
                self._draws_for = faults
                self._burst = faults.burst
            if self._burst > 0:
                self._burst -= 1
                return "error"
            if faults.error_share == 0 and faults.drop_share == 0:
                return "ok"
            x = self._draws.random()
        if x < faults.error_share:
            return "error"
        if x < faults.error_share + faults.drop_share:
            return "drop"
        return "ok"

    # ---------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AssetServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ answers

    def _answer(self, request: BaseHTTPRequestHandler, with_body: bool) -> None:
        faults = self.faults
        if faults.latency_ms and self._closing.wait(faults.latency_ms / 1000):
            return
        method = request.command
        parts = urlsplit(request.path)
        path = unquote(parts.path)
        outcome = "error" if path in faults.failing else self._draw()
        if outcome == "drop":
            self._record(Served(method, path, 0, 0))
            _reset_connection(request)
            return
        if outcome == "error":
            # S3's answer under load; no Retry-After, as S3 sends none.
            body = _SLOW_DOWN
            self._send(request, 503, body if with_body else b"", {}, len(body), path)
            return
        refused = self._refused(path, parse_qs(parts.query))
        if refused is not None:
            status, message = refused
            body = message.encode()
            self._send(request, status, body if with_body else b"", {}, len(body), path)
            return
        file = self._file(path)
        if file is None:
            body = b"<Error><Code>NoSuchKey</Code></Error>"
            self._send(request, 404, body if with_body else b"", {}, len(body), path)
            return
        size = file.stat().st_size
        headers = {"Accept-Ranges": "bytes", "Content-Type": "image/tiff"}
        spec = request.headers.get("Range")
        if spec is None:
            start, end, status = 0, size - 1, 200
        else:
            match = _RANGE.match(spec.strip())
            if match is None:
                # Several ranges in one request: object stores answer them as multipart or
                # not at all; GDAL sends them only when asked (GDAL_HTTP_MULTIRANGE=YES).
                body = f"unsupported Range {spec!r}: one range per request".encode()
                self._send(request, 416, body if with_body else b"", {}, len(body), path)
                return
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last) if last else size - 1, size - 1)
            else:  # a suffix: the last N bytes
                start, end = max(0, size - int(last)), size - 1
            if start >= size or end < start:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(request, 416, b"", headers, 0, path)
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        if not with_body:
            self._send(request, status, b"", headers, length, path)
            return
        with open(file, "rb") as handle:
            handle.seek(start)
            data = handle.read(length)
        self._send(request, status, data, headers, length, path)

    def _refused(self, path: str, query: dict[str, list[str]]) -> tuple[int, str] | None:
        if not self.signed:
            return None
        try:
            expiry = int(query["se"][0])
            sig = query["sig"][0]
        except (KeyError, ValueError, IndexError):
            return 403, "AuthenticationFailed: no signature"
        if not hmac.compare_digest(sig, self._signature(path, expiry)):
            return 403, "AuthenticationFailed: bad signature"
        if expiry < self._now():
            return 403, "AuthenticationFailed: Signed expiry time has passed"
        return None

    def _file(self, path: str) -> Path | None:
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        length: int,
        path: str,
    ) -> None:
        # Recorded before the answer goes out, so that a client that has its answer
        # sees it counted; corrected below if the client hangs up halfway.
        index = self._record(Served(request.command, path, status, len(body)))
        sent = 0
        try:
            request.send_response(status)
            for name, value in headers.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(length))
            request.end_headers()
            rate = self.faults.bandwidth_mbps
            for offset in range(0, len(body), _SEND_CHUNK):
                chunk = body[offset : offset + _SEND_CHUNK]
                request.wfile.write(chunk)
                sent += len(chunk)
                if rate and self._closing.wait(len(chunk) * 8 / (rate * 1e6)):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up
        if sent != len(body):
            with self._lock:
                if index < len(self._served):
                    self._served[index] = Served(request.command, path, status, sent)


def _reset_connection(request: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP reset and no answer (a dropped connection)."""
    request.close_connection = True
    try:
        request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _handler_for(server: AssetServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as object stores serve
        server_version = "nampo-assets"

        def log_message(self, *args: Any) -> None:  # the traffic is counted, not logged
            pass

        def do_GET(self) -> None:
            server._answer(self, with_body=True)

        def do_HEAD(self) -> None:
            server._answer(self, with_body=False)

    return Handler
