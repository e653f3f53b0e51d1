"""`alluse serve --relay`: a write through the HTTP API reaches the JetStream stream by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Stream
from tests.e2e.test_serve import _call, _port, _wait_ready


def test_an_api_write_reaches_jetstream_through_the_relay_in_serve(tmp_path: Path, stream: Stream) -> None:
    port = _port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    env |= {"ALLUSE_NATS_URL": stream.url, "ALLUSE_EVENTS_STREAM": stream.name, "ALLUSE_EVENTS_PREFIX": stream.prefix}
    server = subprocess.Popen([str(Path(sys.executable).parent / "alluse"), "serve", "--port", str(port), "--relay"],
                              cwd=tmp_path, env={**env, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _wait_ready(base)
        assert server.stdout is not None
        password = None
        while password is None:
            password = (m := re.search(r"user admin .* password (\S+) ", server.stdout.readline())) and m.group(1)
        status, tokens = _call("POST", f"{base}/auth/login", {"username": "admin", "password": password})
        assert status == 200, tokens
        status, body = _call("POST", f"{base}/portfolios/demo/deposits", {"to": "A1", "amount": "12.34"},
                             tokens["access_token"])  # fmt: skip
        assert status == 201, body
        for _ in range(100):
            found = [env for _, env, _ in stream.messages() if env["kind"] == "cash.deposit"]
            if found and found[-1]["data"]["transfer_id"] == body["transfer_id"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the deposit never reached the stream")
        assert found[-1]["data"]["amount_cents"] == 1234
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "Traceback" not in err
