"""Regenerate docs/screenshots/: every dashboard page at 1280×800 and 390×844, in Debian's chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Builds the showcase portfolio (the demo after some trading, forks and a merge: alluse.sim.showcase)
in a fresh SQLite file, starts `alluse serve` on a free loopback port, logs in as its owner and
photographs each page. Needs the dev extra (playwright) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
PAGES = [
    ("overview", "/p/demo/"),
    ("account", "/p/demo/accounts/A1-COM"),
    ("lot", None),  # the first lot of the account page
    ("tree", "/p/demo/tree"),
    ("lifecycle", "/p/demo/lifecycle"),
    ("reports", "/p/demo/reports"),
    ("alerts", "/p/demo/alerts"),
    ("statements", "/p/demo/statements"),
    ("roles", "/p/demo/roles"),
    ("projection", "/p/demo/projection"),
    ("login", "/login"),
]
OWNER, PASSWORD = "owner", "owner-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(workdir: Path) -> str:
    """The showcase database and its owner; returns the database URL."""
    from alluse.services import access
    from alluse.sim.showcase import build_showcase
    from alluse.store.db import make_engine, migrate

    url = f"sqlite:///{workdir / 'alluse.db'}"
    engine = make_engine(url)
    migrate(engine)
    for _ in build_showcase(engine, "system:screenshots"):
        pass
    access.create_user(engine, OWNER, PASSWORD)
    with engine.connect() as conn:
        pid = access.portfolio_id_for(conn, "demo")
    assert pid is not None
    access.grant_role(engine, "system:screenshots", pid, OWNER, "owner", "screenshots:owner")
    engine.dispose()
    return url


def serve(workdir: Path, url: str, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLUSE_")}
    env |= {"ALLUSE_DATABASE_URL": url, "ALLUSE_KEY_FILE": str(workdir / "alluse.key"), "ALLUSE_REQUEST_LOG": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "alluse"), "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(1200):  # up to two minutes on a busy machine
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"alluse serve did not start: {proc.communicate(timeout=10)[1][-2000:]}")


def shoot(base: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label, (w, h) in VIEWPORTS.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.goto(f"{base}/login")
            page.fill("input[name=username]", OWNER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/p/demo/")
            for name, path in PAGES:
                if name == "login":
                    page.context.clear_cookies()
                if path is None:
                    page.goto(f"{base}/p/demo/accounts/A1-COM")
                    page.click("table[data-testid=lots] tbody tr:first-child a")
                else:
                    page.goto(f"{base}{path}")
                page.wait_for_load_state("networkidle")
                file = out / f"{name}-{label}.png"
                page.screenshot(path=str(file), full_page=name != "reports")
                written.append(file)
            page.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alluse-shots-") as tmp:
        workdir = Path(tmp)
        url = prepare(workdir)
        port = free_port()
        proc = serve(workdir, url, port)
        try:
            for file in shoot(f"http://127.0.0.1:{port}", args.out):
                print(file)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
