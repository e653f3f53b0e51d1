"""schemathesis against the app's own OpenAPI document, on SQLite and PostgreSQL: generated requests
to every operation (valid and invalid ones) never get a 5xx, and every answer matches the documented
status codes, content types and schemas. Bounded: a few dozen examples per operation."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from alluse.services.demo import build_demo

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 10}


def test_openapi_fuzz_no_5xx_and_responses_match_schema(api):  # type: ignore[no-untyped-def]
    for _ in build_demo(api.engine, "test"):
        pass
    headers = api.user("fuzzer", admin=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures = []
    statuses = Counter()
    for op in operations:
        pinned = {"portfolio": "demo"} if "{portfolio}" in op.path else None
        for mode, n in EXAMPLES.items():

            @settings(
                max_examples=n,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=op.as_strategy(generation_mode=mode, path_parameters=pinned))
            def run(case):  # type: ignore[no-untyped-def]
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses[response.status_code // 100] += 1

            try:
                run()
            except Unsatisfiable:
                # Operations without parameters or body have no invalid request to generate.
                assert mode is GenerationMode.NEGATIVE, op.label
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{op.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    # The fuzzing reached past validation: plenty of requests were carried out, plenty refused.
    assert statuses[2] >= 50 and statuses[4] >= 50, statuses
