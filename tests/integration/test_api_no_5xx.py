"""No input gets a 5xx, on SQLite and PostgreSQL.

1. A property test over every operation of the OpenAPI document: each path, query and body
   parameter in turn takes a hostile value — Unicode digits, huge and tiny numbers, empty and very
   long strings, NUL, wrong JSON types — while the others stay plausible. Any 5xx fails the test,
   and every answer is JSON or problem+json.
2. schemathesis in its stateful mode: sequences of calls that feed one answer's ids into the next
   request (links inferred from the schema), with a bounded number of steps.

Both run against the demo portfolio with an admin token, so requests reach past authorisation."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from alluse.services.demo import build_demo
from alluse.store.schema import metadata

# Every slot (a path, query or body parameter of an operation) gets each of these in turn.
HOSTILE: list[Any] = [
    "²",
    "𝟘𝟙",
    "1E+999999999",
    "9" * 400,
    "",
    "x" * 5000,
    "\x00",
    10**400,
    [],
]
# Then Hypothesis draws more, at random, for a few examples per operation.
MORE = st.one_of(
    st.sampled_from(
        [
            "١٢٣",
            "NaN",
            "-1e-999999999",
            "Ⅻ",
            "-Infinity",
            " ",
            "%00",
            "../../etc/passwd",
            "A1-GEN\n",
            "🙂",
            "null",
            "0" * 30 + "1",
        ]
    ),
    st.sampled_from([1e308, -1e-308, -(10**30), 0.1, True, None, {}, [[[]]]]),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70),
)
# Plausible values for the other parameters, so a request gets past the one being probed.
PLAUSIBLE: dict[str, Any] = {
    "portfolio": "demo",
    "account": "A1-GEN",
    "target": "A1-GEN",
    "group": "A1",
    "ref": "IBKR:U1000001",
    "username": "fuzzer",
    "to": "A1",
    "from_account": "A1-GEN",
    "to_account": "A1-COM",
    "amount": "10",
    "action": "STO",
    "symbol": "XYZ   270115P00050000",
    "quantity": 1,
    "price": "1",
    "delta": "0.45",
    "on": "2027-01-14",
}


def _operations(openapi: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, op)
        for path, methods in openapi["paths"].items()
        for method, op in methods.items()
        if method in ("get", "post", "put", "delete", "patch")
    ]


def _resolve(openapi: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_fields(openapi: dict, op: dict) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not content:
        return []
    return list(_resolve(openapi, content["schema"]).get("properties", {}))


class Prober:
    def __init__(self, api, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
        self.api, self.headers = api, headers
        self.statuses: Counter[int] = Counter()
        self.server_errors: dict[tuple[str, str, str], str] = {}

    def send(self, method: str, template: str, params: list[dict], fields: list[str], slot: str, value: Any) -> None:
        path, query = template, {}
        body = {f: PLAUSIBLE.get(f, "1") for f in fields} if fields else None
        for p in params:
            given_ = value if p["name"] == slot else PLAUSIBLE.get(p["name"], "1")
            text = given_ if isinstance(given_, str) else json.dumps(given_)
            if p["in"] == "path":
                path = path.replace("{" + p["name"] + "}", quote(text, safe="") or "%20")
            else:
                query[p["name"]] = text
        if body is not None and slot in body:
            body[slot] = value
        try:
            r = self.api.client.request(method, path, params=query, json=body, headers=self.headers)
            status, text = r.status_code, r.text
        except Exception as exc:  # the test client re-raises what the server did not handle
            status, text = 500, repr(exc)
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.setdefault((method, template, slot), f"{value!r:.60}: {status} {text[:200]}")
        elif status >= 400:
            assert r.headers["content-type"] == "application/problem+json", (method, path, r.text)


def _more(prober: Prober, method: str, template: str, params: list[dict], fields: list[str], slots: list[str]) -> None:
    @settings(max_examples=2, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(slot=st.sampled_from(slots), value=MORE)
    def more(slot: str, value: Any) -> None:
        prober.send(method, template, params, fields, slot, value)

    more()


def test_hostile_values_in_any_parameter_never_get_a_5xx(api):  # type: ignore[no-untyped-def]
    for _ in build_demo(api.engine, "test"):
        pass
    prober = Prober(api, api.user("fuzzer", admin=True))
    openapi = api.app.openapi()
    operations = _operations(openapi)
    assert len(operations) >= 40
    for method, template, op in operations:
        params = [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]
        fields = _body_fields(openapi, op)
        slots = [p["name"] for p in params] + fields
        if not slots:
            continue
        # A fresh token per operation: signing out everywhere or a password reset voids the last one.
        prober.headers = api.headers_for("fuzzer")
        for slot in slots:
            for value in HOSTILE:
                prober.send(method, template, params, fields, slot, value)

        _more(prober, method, template, params, fields, slots)
    assert not prober.server_errors, "\n".join(f"{k}: {v}" for k, v in prober.server_errors.items())
    # Both outcomes were reached: plenty refused, and some carried out despite the probe.
    assert sum(n for s, n in prober.statuses.items() if s >= 400) >= 1000, prober.statuses
    assert sum(n for s, n in prober.statuses.items() if s < 300) >= 15, prober.statuses


STATEFUL_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _snapshot(engine: sa.Engine) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    with engine.connect() as conn:
        return [(t, [dict(r._mapping) for r in conn.execute(sa.select(t))]) for t in metadata.sorted_tables]


def _restore(engine: sa.Engine, snapshot: list[tuple[sa.Table, list[dict[str, Any]]]]) -> None:
    """Put every table back as `snapshot` found it, in one transaction (foreign keys are checked at
    its end on SQLite and not at all meanwhile on PostgreSQL: the rows come back as they were)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            if conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").first():
                # Citus refuses a reference table's DML after parallel DML on a table that refers to it.
                conn.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
        for table, _ in reversed(snapshot):
            conn.execute(table.delete())
        for table, rows in snapshot:
            if rows:
                conn.execute(table.insert(), rows)


def test_schemathesis_stateful_sequences_never_get_a_5xx(api):  # type: ignore[no-untyped-def]
    for _ in build_demo(api.engine, "test"):
        pass
    headers = api.user("fuzzer", admin=True)
    # Each scenario starts from the same database: answers then depend on the calls alone, as
    # Hypothesis requires of a state machine (a user created by one scenario would otherwise turn the
    # next scenario's 201 into a 409, and its choices with it).
    start = _snapshot(api.engine)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    calls: Counter[int] = Counter()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            _restore(api.engine, start)

        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            return {"headers": headers}

        def after_call(self, response, case):  # type: ignore[no-untyped-def]
            calls[response.status_code // 100] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
            case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs or None)

    Workflow.run(
        settings=settings(
            max_examples=20,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert calls[5] == 0 and calls[2] >= 10, calls
