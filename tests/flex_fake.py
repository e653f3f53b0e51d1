"""A local fake of the IBKR Flex Web Service (version 3) on a random port of 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _fail(code: str, message: str) -> bytes:
    return (
        f'<FlexStatementResponse timestamp="30 November, 2026 01:00 AM EST"><Status>Fail</Status>'
        f"<ErrorCode>{code}</ErrorCode><ErrorMessage>{message}</ErrorMessage></FlexStatementResponse>"
    ).encode()


@dataclass
class FakeFlex:
    """Answers SendRequest for (token, query) with a reference code; GetStatement answers 1019
    ("generation in progress") `pending` times, then the statement."""

    token: str
    query_id: str
    statement: bytes
    pending: int = 2
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, params: dict[str, str]) -> bytes:
        self.requests.append(path.rsplit("/", 1)[-1])
        if params.get("v") != "3":
            return _fail("1020", "Invalid request or unable to validate request.")
        if params.get("t") != self.token:
            return _fail("1015", "Token is invalid.")
        if path.endswith("/SendRequest"):
            if params.get("q") != self.query_id:
                return _fail("1014", "Query is invalid.")
            return (
                b'<FlexStatementResponse timestamp="30 November, 2026 01:00 AM EST"><Status>Success</Status>'
                b"<ReferenceCode>7391046582</ReferenceCode><Url>" + self.url.encode() + b"/GetStatement</Url>"
                b"</FlexStatementResponse>"
            )
        if path.endswith("/GetStatement"):
            if params.get("q") != "7391046582":
                return _fail("1017", "Reference code is invalid.")
            if self.pending > 0:
                self.pending -= 1
                return _fail("1019", "Statement generation in progress. Please try again shortly.")
            return self.statement
        return _fail("1020", "Invalid request or unable to validate request.")


@contextmanager
def serve(fake: FakeFlex) -> Iterator[FakeFlex]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            u = urlparse(self.path)
            body = fake.answer(u.path, {k: v[0] for k, v in parse_qs(u.query).items()})
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/AccountManagement/FlexWebService"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
