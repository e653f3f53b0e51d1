"""What a request may send, and the headers every answer carries.

- Body size: Starlette's RequestBodyLimitMiddleware cuts a streamed body off as soon as its bytes
  pass `max_body_bytes` (413), so an oversized body is never buffered whole; a body whose
  Content-Length is already over the limit is refused by `EdgeGuard` before anything else runs.
- `EdgeGuard` (ASGI middleware) adds the security headers to every response and refuses a declared
  oversized body at once, as problem+json.
- `in_thread` runs a sync endpoint in a worker thread with one hop rather than FastAPI's two.
- `off_the_loop` runs a heavy endpoint (reports, PNG charts) in a worker thread behind its own small
  limiter, so a burst of them queues there without taking the thread pool every other route uses.
- `strict_json` (a dependency of every API router): a JSON body must say `application/json` (or
  `+json`) with no charset other than UTF-8 (else 415), may not repeat a key in an object (422) and
  is bounded in nesting depth and keys per object (422). Routes of other kinds (the web pages'
  forms) do not carry it. Big bodies are checked in a worker thread, off the event loop.

The Content-Security-Policy is one setting (`ALLUSE_CONTENT_SECURITY_POLICY`): same-origin scripts,
styles and images, no inline script, no framing. The interactive API docs (Swagger UI, ReDoc) load
their script from a CDN and start it inline, so their two pages get `ALLUSE_DOCS_CONTENT_SECURITY_POLICY`.
"""

from __future__ import annotations

import asyncio
import email.message
import functools
import json
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import Request, params
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alluse.api.problems import problem
from alluse.api.threads import run_sync
from alluse.config import Settings

DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Below this a body is checked on the event loop: the thread hop costs more than the parse.
OFFLOAD_BYTES = 64 * 1024


class EdgeGuard:
    """Pure ASGI middleware, outermost: the security headers on every answer (unless a route set its
    own), and a body whose Content-Length is over the limit refused before routing, authentication
    or anything else runs (Starlette's limiter would answer it in plain text, and only once the
    route reads the body)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_body_bytes
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.headers = [(b"content-security-policy", settings.content_security_policy.encode()), *common]
        self.docs_headers = [(b"content-security-policy", settings.docs_content_security_policy.encode()), *common]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs_headers if scope["path"] in DOCS_PATHS else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in names]
                if b"cache-control" not in names:
                    # Answers carry account data: no shared or browser cache keeps them.
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            response = problem(413, "body-too-large", f"request body over the limit of {self.limit} bytes")
            response.headers["Connection"] = "close"  # the unread body must not be taken for a request
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None


# --- JSON bodies ---------------------------------------------------------------------------------


class UnsupportedMediaType(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(415, detail)


class UnacceptableJson(HTTPException):
    """Well-formed JSON this API does not take (a repeated key, too deep, too many keys): 422."""

    def __init__(self, detail: str) -> None:
        super().__init__(422, detail)


@functools.lru_cache(maxsize=64)  # clients send the same few content types; parsing one costs ~10 µs
def media_type_error(content_type: str | None) -> str | None:
    if not content_type:
        return "send the body as application/json"
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return f"send the body as application/json, not {message.get_content_type()}"
    charset = message.get_param("charset")
    if charset is not None and str(charset).strip().lower() not in ("utf-8", "utf8"):
        return f"a JSON body must be UTF-8, not charset {charset}"
    return None


def check_json(body: bytes, max_depth: int, max_keys: int) -> None:
    """Refuse repeated keys, and nesting or objects past the bounds (UnacceptableJson, 422)."""
    try:
        checked_json(body, max_depth, max_keys)
    except (ValueError, RecursionError):
        return  # not JSON at all: FastAPI's own parse has answered this already


def checked_json(body: bytes, max_depth: int, max_keys: int) -> Any:
    """The body parsed as `json.loads` parses it, once checked as `check_json` checks it; ValueError
    or RecursionError when it is not JSON."""
    # What json.loads does with bytes, then the decoder made once per bound (json.loads makes one,
    # and its scanner, on every call given a hook).
    value = _decoder(max_keys).decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise UnacceptableJson(f"the JSON body nests deeper than {max_depth} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


@functools.lru_cache(maxsize=8)
def _decoder(max_keys: int) -> json.JSONDecoder:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len(items) > max_keys:
            raise UnacceptableJson(f"a JSON object has {len(items)} keys; at most {max_keys} are accepted")
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise UnacceptableJson(f"duplicate key {k[:50]!r} in the JSON body")
            out[k] = v
        return out

    return json.JSONDecoder(object_pairs_hook=pairs)


async def strict_json(request: Request) -> None:
    field = getattr(request.scope.get("route"), "body_field", None)
    # Form and file uploads (multipart) are parsed by FastAPI itself and are not JSON.
    if request.method not in BODY_METHODS or field is None or isinstance(field.field_info, params.Form):
        return
    body = await request.body()
    if not body:
        return
    error = media_type_error(request.headers.get("content-type"))
    if error:
        raise UnsupportedMediaType(error)
    settings: Settings = request.app.state.ctx.settings
    args = (body, settings.max_json_depth, settings.max_json_keys)
    if len(body) > OFFLOAD_BYTES:
        await anyio.to_thread.run_sync(check_json, *args)
    else:
        check_json(*args)


# --- heavy endpoints -----------------------------------------------------------------------------

HEAVY_THREADS = 2  # the machine's cores: more would only slow each report down
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()
F = TypeVar("F", bound=Callable[..., Any])


def _heavy_limiter() -> anyio.CapacityLimiter:
    # One per event loop: a limiter belongs to the loop that first uses it (tests start several).
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(HEAVY_THREADS)
    return limiter


def in_thread(fn: F) -> F:
    """Turn a sync endpoint into an async one that runs `fn` in a worker thread (`api/threads.py`), as
    FastAPI runs a sync endpoint in its thread pool, but with one hop per request instead of two:
    FastAPI validates a sync endpoint's response in the pool as well, a second hop that costs more
    than the validation itself (the write routes, docs/api.md "Performance"). FastAPI reads the
    parameters through `functools.wraps`."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_sync(functools.partial(fn, *args, **kwargs))

    return run  # type: ignore[return-value]


def off_the_loop(fn: F) -> F:
    """Turn a sync endpoint into an async one that runs `fn` in a heavy-work thread. FastAPI reads
    the parameters through `functools.wraps`."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=_heavy_limiter())

    return run  # type: ignore[return-value]
