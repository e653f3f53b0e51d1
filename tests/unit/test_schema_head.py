"""The command line's cheap "is the schema current?" check reads the migrations' head from the files;
it must name the revision Alembic itself takes for the head."""

from alembic.script import ScriptDirectory

from alluse.store.db import alembic_config, script_head


def test_script_head_is_alembics_head() -> None:
    assert script_head() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
