"""The command line's cheap "is the schema current?" check reads the migrations' head from the files;
it must name the revision Alembic itself takes for the head."""

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from alluse.store import db
from alluse.store.db import alembic_config, script_head


def test_script_head_is_alembics_head() -> None:
    assert script_head() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_identifiers_below_the_functions_leave_the_answer_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the part above the first function is read (it is where Alembic writes them): None, so the
    # caller asks Alembic, never a wrong head.
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "versions" / "0002_b.py").write_text(
        'import sqlalchemy\ndef upgrade():\n    pass\nrevision = "0002"\ndown_revision = "0001"\n'
    )
    monkeypatch.setattr(db, "MIGRATIONS", tmp_path)
    assert script_head() is None
    (tmp_path / "versions" / "0002_b.py").write_text(
        'revision = "0002"\ndown_revision = "0001"\ndef upgrade():\n    pass\n'
    )
    assert script_head() == "0002"
