"""The layer rules (docs/architecture.md) and the types hold: `lint-imports` checks the contracts in
pyproject.toml, `mypy` the type annotations (strict for the domain, the services and the views). Both run here
so that the test suite, and with it CI, enforces them; `make lint` runs them too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_imports_follow_the_layers() -> None:
    r = _run("lint-imports", "--no-cache")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " kept, 0 broken." in r.stdout, r.stdout[-2000:]


def test_architecture_doc_quotes_the_contract() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    quoted = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    assert quoted.startswith("[[tool.importlinter.contracts]]")
    assert quoted in (ROOT / "pyproject.toml").read_text(), "docs/architecture.md quotes a stale contract"


def test_types_check() -> None:
    r = _run("mypy")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert r.stdout.startswith("Success: no issues found"), r.stdout[-2000:]
