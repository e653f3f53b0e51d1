"""Login rate limiting: at most N failures per username and per client address in a sliding window.

In memory, per server process: `alluse serve` runs one process. Several processes behind a balancer
would each keep their own count (docs/security.md)."""

from __future__ import annotations

import threading
import time
from collections import deque

from alluse.domain.errors import TooManyAttempts


class LoginLimiter:
    def __init__(self, max_failures: int, window_seconds: int, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def check(self, *keys: str) -> None:
        """Refuse before the password is even checked when any key is over its budget."""
        now = self.clock()
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    retry = max(1, int(q[0] + self.window - now) + 1)
                    raise TooManyAttempts(f"too many failed logins; try again in {retry} s", retry)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, username_key: str) -> None:
        with self._lock:
            self._failures.pop(username_key, None)
