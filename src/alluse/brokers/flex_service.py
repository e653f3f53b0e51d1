"""The IBKR Flex Web Service (version 3): a statement source.

SendRequest (token, query id) answers a reference code; GetStatement with that code answers the
statement, or an error code while IBKR is still generating it. Waiting codes are polled with a
bounded number of tries; every other code is an error that says what IBKR said.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from alluse.domain.errors import AlluseError

# IBKR's codes that mean "not ready yet, ask again shortly".
RETRY_CODES = frozenset({"1001", "1004", "1005", "1006", "1007", "1008", "1009", "1018", "1019", "1021"})


class FlexServiceError(AlluseError):
    code = "broker-error"


@dataclass(frozen=True)
class FlexWebService:
    """One account's statement source: `statement()` returns the Flex XML bytes."""

    base_url: str
    token: str
    query_id: str
    poll_seconds: float = 5.0
    max_polls: int = 12
    timeout_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def statement(self) -> bytes:
        with httpx.Client(timeout=self.timeout_seconds, headers={"User-Agent": "alluse/flex"}) as client:
            reference = self._request(client)
            for attempt in range(self.max_polls):
                body = self._get(client, "GetStatement", {"q": reference, "t": self.token, "v": "3"})
                status = _status(body)
                if status is None:
                    return body
                code, message = status
                if code not in RETRY_CODES:
                    raise FlexServiceError(f"IBKR Flex GetStatement failed: error {code}: {message}")
                if attempt < self.max_polls - 1:
                    self.sleep(self.poll_seconds)
            raise FlexServiceError(
                f"IBKR Flex statement not ready after {self.max_polls} tries "
                f"(last: error {code}: {message}); try again later"
            )

    def _request(self, client: httpx.Client) -> str:
        for attempt in range(self.max_polls):
            body = self._get(client, "SendRequest", {"t": self.token, "q": self.query_id, "v": "3"})
            root = _xml(body, "SendRequest")
            if (root.findtext("Status") or "").strip() == "Success":
                ref = (root.findtext("ReferenceCode") or "").strip()
                if not ref:
                    raise FlexServiceError("IBKR Flex SendRequest answered Success without a reference code")
                return ref
            code, message = _error(root)
            if code not in RETRY_CODES or attempt == self.max_polls - 1:
                raise FlexServiceError(f"IBKR Flex SendRequest failed: error {code}: {message}")
            self.sleep(self.poll_seconds)
        raise AssertionError("unreachable")

    def _get(self, client: httpx.Client, endpoint: str, params: dict[str, str]) -> bytes:
        url = f"{self.base_url.rstrip('/')}/{endpoint}"
        try:
            r = client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise FlexServiceError(f"IBKR Flex {endpoint}: cannot reach {self.base_url}: {exc}") from None
        if r.status_code != 200:
            raise FlexServiceError(f"IBKR Flex {endpoint}: HTTP {r.status_code} from {self.base_url}")
        return r.content


def _xml(body: bytes, endpoint: str) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise FlexServiceError(f"IBKR Flex {endpoint} answered something that is not XML") from None


def _error(root: ET.Element) -> tuple[str, str]:
    return (root.findtext("ErrorCode") or "?").strip(), (root.findtext("ErrorMessage") or "no message").strip()


def _status(body: bytes) -> tuple[str, str] | None:
    """None when the body is a statement; (code, message) when it is a FlexStatementResponse error."""
    root = _xml(body, "GetStatement")
    if root.tag == "FlexQueryResponse":
        return None
    if root.tag == "FlexStatementResponse":
        return _error(root)
    raise FlexServiceError(f"IBKR Flex GetStatement answered an unexpected <{root.tag}> document")
