"""pyproject.toml's package-data names every data file of the package, and nothing that is not there:
a template or a scenario missing from the wheel only shows once installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "alluse"


def test_package_data_lists_exactly_the_data_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["alluse"]
    matched: set[Path] = set()
    for pattern in globs:
        found = {p for p in PACKAGE.glob(pattern) if p.is_file()}
        assert found, f"package-data {pattern!r} matches no file"
        matched |= found
    data = {
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data == matched, f"not packaged: {sorted(map(str, data - matched))}"
