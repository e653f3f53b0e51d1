"""`make run` installs requirements.lock only, without the dev tools: every alluse module must import
with just those distributions. A package that only the dev lock brings (directly or as some test
tool's dependency) and that alluse imports at run time would break the first `make run`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: refuses any import whose distribution is not in the runtime lock,
# then imports every alluse module.
PROBE = r"""
import importlib, importlib.abc, importlib.metadata as md, pkgutil, re, sys
allowed = set(sys.argv[1].split(","))
owners = md.packages_distributions()
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()

class RuntimeOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        dists = owners.get(top)
        if dists and top != "alluse" and not any(canon(d) in allowed for d in dists):
            raise ImportError(f"{name} (from {', '.join(dists)}) is not in requirements.lock")
        return None

sys.meta_path.insert(0, RuntimeOnly())
import alluse
for m in pkgutil.walk_packages(alluse.__path__, "alluse."):
    if not m.name.startswith("alluse.store.migrations"):
        importlib.import_module(m.name)
print("imported every alluse module")
"""


def runtime_distributions() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if re.match(r"^[A-Za-z0-9]", line) and "==" in line:
            names.add(re.sub(r"[-_.]+", "-", line.split("==")[0].split("[")[0]).lower())
    return names


def test_every_module_imports_with_the_runtime_lock_alone() -> None:
    runtime = runtime_distributions()
    assert {"fastapi", "sqlalchemy", "typer"} <= runtime and "pytest" not in runtime
    r = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(sorted(runtime))], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "imported every alluse module" in r.stdout
