"""docs/data-model.md is generated from the schema metadata: stale means a failing test."""

from __future__ import annotations

from pathlib import Path

from alluse.store.schema import metadata
from alluse.store.schema_doc import BEGIN, END, render_data_model, update_data_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"


def test_data_model_doc_is_current() -> None:
    assert DOC.read_text() == update_data_model(DOC), "docs/data-model.md is stale: run `alluse schema-docs`"


def test_generated_part_covers_every_table_column_and_constraint() -> None:
    text = render_data_model()
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert "erDiagram" in text
    for t in metadata.tables.values():
        assert f"### `{t.name}`" in text
        for c in t.columns:
            assert f"| `{c.name}` |" in text
        for con in t.constraints:
            if con.name and not con.name.startswith("pk_"):
                assert f"`{con.name}`" in text, con.name
        for ix in t.indexes:
            assert f"`{ix.name}`" in text


def test_a_schema_change_makes_the_doc_stale(tmp_path: Path) -> None:
    stale = tmp_path / "data-model.md"
    stale.write_text(DOC.read_text().replace("| `amount_cents` |", "| `amount` |"))
    assert stale.read_text() != update_data_model(stale)
