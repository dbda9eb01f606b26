"""Schemathesis over every operation of a live DataFast's OpenAPI schema, with many examples.

    .venv/bin/python bench/fuzz_api.py [--examples 100]

Starts ``datafast serve`` (embedded, its own data dir and port), signs up a user with a site and
an API key, and runs tests/apifuzz.py: per operation ``--examples`` positive and as many negative
cases, checked with schemathesis' ``not_a_server_error``. Prints ONE JSON line: operations,
requests, server_errors_5xx, other_failures, statuses, unhandled_errors_logged, server_alive,
elapsed_s; the 5xx cases (with a curl command each) go to stderr.

Not stateful: the schema declares no OpenAPI links between operations, so schemathesis' state
machine would have nothing to chain; the fixed account (its site id put into most cases) gives
the handlers real data to reach instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.apifuzz import fuzz_api  # noqa: E402
from tests.live import LiveServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # hypothesis/schemathesis chatter; the figures are what count
    with (
        tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp,
        LiveServer(Path(tmp) / "data", LOG_LEVEL="ERROR", STATS_RATE_LIMIT="1000000") as server,
    ):
        started = time.monotonic()
        report = fuzz_api(server.url, server.account(), args.examples)
        elapsed = time.monotonic() - started
        alive = server.alive()
        unhandled = sum("unhandled error" in line for line in server.log().splitlines())
    for failure in report.server_errors + report.other_failures:
        print(failure, file=sys.stderr)
    print(
        json.dumps(
            {
                "examples_per_operation_and_mode": args.examples,
                **report.figures(),
                "unhandled_errors_logged": unhandled,
                "server_alive": alive,
                "elapsed_s": round(elapsed, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
