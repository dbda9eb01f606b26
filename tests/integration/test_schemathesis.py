"""Every operation of ``/api/schema/openapi.json``, fuzzed by schemathesis against a live server
(``datafast serve`` in its own process, with a user, a site and an API key): no generated request
may get a 5xx, and the server logs no unhandled error. How cases are made: :mod:`tests.apifuzz`;
``bench/fuzz_api.py`` runs the same with many more examples.
"""

from __future__ import annotations

import pytest

from tests.apifuzz import fuzz_api
from tests.live import LiveServer

EXAMPLES = 6
"""Positive and as many negative cases per operation: about 700 requests, well under 3 minutes."""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_no_operation_of_the_openapi_schema_answers_a_5xx(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Rate limits would answer most of the run 429, hiding the handlers behind them.
    with LiveServer(tmp_path_factory.mktemp("schemathesis"), STATS_RATE_LIMIT="1000000") as server:
        report = fuzz_api(server.url, server.account(), EXAMPLES)
        alive = server.alive()
        unhandled = [line for line in server.log().splitlines() if "unhandled error" in line]

    assert report.operations >= 60, report.figures()
    assert report.requests >= report.operations * EXAMPLES, report.figures()
    assert report.server_errors == [], "\n".join(report.server_errors[:20])
    assert report.other_failures == [], "\n".join(report.other_failures[:20])
    assert alive
    assert unhandled == [], "\n".join(unhandled[:5])
