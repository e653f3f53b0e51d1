"""No two alluse modules import each other, directly or round a longer circle, counting imports inside
functions and under TYPE_CHECKING (scripts/import_cycles.py prints any it finds)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "import_cycles.py"


def test_no_import_circles() -> None:
    spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    known = mod.modules()
    assert len(known) > 100  # the whole package was read
    graph = {name: mod.imports(name, path, known) for name, path in known.items()}
    assert any(graph.values())  # and its imports were found
    assert mod.cycles(graph) == []
