"""Hostile input over every route of the service's own OpenAPI document, as each role: no 5xx, no answer off its schema.

schemathesis generates requests from docs/openapi.json's source (the app's own document):
valid ones and ones built to break the schema (wrong types, missing and extra fields, odd
strings), with the tokens of a liaison, a viewer, an auditor, the server admin and nobody.
Every answer must be a documented one: no server error, a status the operation declares, a
body that fits its schema. One check of schemathesis's is left out: that a request fitting the
schema is accepted. The service validates more than a schema can say (a position in any
notation, a polygon's validity, a time window's order, an id's alphabet) and refuses with 422
naming the field, by design. The examples per operation are bounded so the suite stays short.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import Api, add_parties, running_api


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("hostile") / "t.db") as api:
        add_parties(api)
        api.asset("alfa", "post", disclosure="hidden", position="34.5500, 71.0200")
        yield api


ROLES = ("alfa", "alfa:viewer", "alfa:auditor", "admin", None)


def walk(api: Api, examples: int, roles: tuple[str | None, ...]) -> int:
    """``examples`` generated requests per operation, each sent as every one of ``roles``; the requests sent."""
    # Driven through hypothesis directly: schemathesis's pytest fixtures do not run on this pytest version.
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # The event stream never ends by itself: read it to its first message (stream.opened), not until
    # the client's ten-second deadline cuts it, which made each walk 10 to 20 s longer and left the
    # cut to race the stream's own work on a loaded machine.
    schema.config.max_stream_events = 1
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, "every route of the document is walked"
    sent = 0
    for operation in operations:

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(operation.as_strategy())
        def each(case: Case) -> None:
            nonlocal sent
            for who in roles:
                headers = {} if who is None else {"Authorization": f"Bearer {api.token(who)}"}
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
                sent += 1

        each()
    return sent


def test_no_route_answers_a_server_error_or_off_its_schema(walked: Api) -> None:
    """A short walk in the suite: a liaison and no token, three requests per operation."""
    assert walk(walked, 3, ("alfa", None)) > 200


@pytest.mark.slow
def test_every_role_meets_no_server_error_or_answer_off_its_schema(walked: Api) -> None:
    """The long walk, by hand: every role, 50 requests per operation."""
    assert walk(walked, 50, ROLES) > 1_000
