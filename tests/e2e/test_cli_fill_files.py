"""alluse's own fills file, CSV and JSON: errors name the line and the column, nothing is written on
an error, and a file without keys re-imports without recording anything twice."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import db_state

HEADER = "account,action,symbol,quantity,price,commission,date,amount\n"
ROWS = (
    "A1-GEN,STO,XYZ   270108P00050000,2,1.25,1.30,2027-01-07,\n"
    'A1-COM,BTO,ABC,"1,000",20,1.00,2027-01-11,\n'
    'A1-COM,BTO,ABC,"1,000",20,1.00,2027-01-11,\n'  # an identical second purchase: a fact of its own
    "A1-REV,FEE,,,,,2027-01-12,10.00\n"
)


def _setup(cli_db):  # type: ignore[no-untyped-def]
    cli_db("group", "open", "250000")
    return cli_db


def test_csv_without_keys_reimports_idempotently(cli_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _setup(cli_db)
    f = tmp_path / "fills.csv"
    f.write_text(HEADER + ROWS)
    assert "recorded 4 fills (0 already recorded" in run("import-fills", str(f), "--future").output
    state = db_state(run.engine)
    assert "recorded 0 fills (4 already recorded" in run("import-fills", str(f), "--future").output
    assert db_state(run.engine) == state
    # A file with one row more adds only that row.
    f.write_text(HEADER + ROWS + "A1-COM,BTO,ABC,5,20.5,,2027-01-13,\n")
    assert "recorded 1 fills (4 already recorded" in run("import-fills", str(f), "--future").output


def test_json_with_keys(cli_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _setup(cli_db)
    f = tmp_path / "fills.json"
    fills = [
        {"key": "f1", "account": "A1-COM", "action": "BTO", "symbol": "ABC", "quantity": 100, "price": 20.5,
         "commission": "1", "date": "2027-01-11"},
        {"key": "f2", "account": "A1-REV", "action": "DIVIDEND", "symbol": "ABC", "amount": "12.34",
         "date": "2027-01-12"},
    ]  # fmt: skip
    f.write_text(json.dumps(fills))
    assert "recorded 2 fills" in run("import-fills", str(f), "--future").output
    assert "recorded 0 fills (2 already recorded" in run("import-fills", str(f), "--future").output


def test_errors_name_line_and_column_and_write_nothing(cli_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = _setup(cli_db)
    state = db_state(run.engine)
    f = tmp_path / "bad.csv"
    cases = {
        HEADER + "A1-COM,BTO,ABC,1.000,20,,2027-01-11,\n": "line 2, column quantity: '1.000' has more than 0 decimals",
        HEADER + 'A1-COM,BTO,ABC,"1,0000",20,,2027-01-11,\n': "line 2, column quantity: '1,0000' is not in that form",
        HEADER + ROWS + "A1-COM,BTO,ABC,1,20.00001,,2027-01-11,\n": "line 6, column price:",
        HEADER + "A1-COM,BUY,ABC,1,20,,2027-01-11,\n": "line 2, column action: 'BUY' is not one of BTO",
        HEADER + "A1-COM,BTO,ABC,1,20,,11/01/2027,\n": "line 2, column date: '11/01/2027' is not a date",
        HEADER + "A1-COM,BTO,,1,20,,2027-01-11,\n": "line 2, column symbol: BTO needs an instrument symbol",
        HEADER + "A1-REV,FEE,,,,,2027-01-12,\n": "line 2, column amount: FEE needs an amount above zero",
        "acount,action\nA1-COM,BTO\n": "line 1: unknown column 'acount'",
        "key,action\nk1,BTO\n": "line 1: missing column 'account'",
        "key," + HEADER + ",A1-COM,BTO,ABC,1,20,,2027-01-11,\n": "line 2, column key: idempotency key must be",
    }
    for text, message in cases.items():
        f.write_text(text)
        out = run("import-fills", str(f), "--future", ok=False).output
        assert message in out and out.startswith("error:"), (message, out)
        assert len(out.strip().splitlines()) == 1
    j = tmp_path / "bad.json"
    j.write_text(json.dumps([{"account": "A1-COM", "action": "BTO", "symbol": "ABC", "quantity": 1.5}]))
    assert "fill 1, column quantity: '1.5'" in run("import-fills", str(j), "--future", ok=False).output
    j.write_text("[{]")
    assert "is not valid JSON" in run("import-fills", str(j), ok=False).output
    assert db_state(run.engine) == state
