"""Schemathesis over a live DataFast's OpenAPI schema, one operation at a time: what the pytest
test (tests/integration/test_schemathesis.py) and ``bench/fuzz_api.py`` share.

Each operation gets ``examples`` positive cases (valid per the schema) and as many negative ones
(violating it), sent with a real API key; most cases name the account's own site in
``{website_id}`` so the site-scoped handlers run rather than stop at a 404. Every response is
checked with schemathesis' ``not_a_server_error``; the run never stops at the first failure.
``/realtime`` is left out: it is an endless Server-Sent Events stream.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error

from tests.live import Account

__all__ = ("FuzzReport", "fuzz_api")

# The site must outlive the run: these operations get a generated id, never the account's own.
KEEP_SITE = {
    ("DELETE", "/api/v1/sites/{website_id}"),
    ("POST", "/api/v1/sites/{website_id}/transfer"),
    ("POST", "/api/v1/sites/{website_id}/leave"),
}


@dataclass
class FuzzReport:
    operations: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    """``METHOD path -> status`` and a curl command to reproduce, per 5xx."""
    other_failures: list[str] = field(default_factory=list)
    """Anything else that went wrong: transport errors, schemathesis errors."""

    def figures(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "requests": self.requests,
            "server_errors_5xx": len(self.server_errors),
            "other_failures": len(self.other_failures),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


def _sender(
    report: FuzzReport,
    base_url: str,
    account: Account,
    keep_site: bool,
    turns: Iterator[int],
    timeout: float,
) -> Callable[[Case], None]:
    def send(case: Case) -> None:
        # Every fourth case keeps its generated (unknown) website_id: the 404 path is fuzzed too.
        if not keep_site and "website_id" in (case.path_parameters or {}) and next(turns) % 4:
            case.path_parameters["website_id"] = account.site_id
        report.requests += 1
        try:
            response = case.call(base_url=base_url, headers=account.bearer, timeout=timeout)
        except Exception as exc:  # a dropped connection or a timeout is a failure, not a crash
            report.other_failures.append(f"{case.method} {case.path}: {exc!r}")
            return
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except Exception:
            curl = case.as_curl_command(headers=account.bearer)
            report.server_errors.append(f"{case.method} {case.path} -> {response.status_code}\n  {curl}")

    return send


def fuzz_api(base_url: str, account: Account, examples: int, timeout: float = 60) -> FuzzReport:
    loaded = schemathesis.openapi.from_url(base_url + "/api/schema/openapi.json")
    loaded = loaded.exclude(path_regex="/realtime$")
    report = FuzzReport()
    turns = itertools.count()
    for result in loaded.get_all_operations():
        operation = result.ok()
        report.operations += 1
        keep_site = (operation.method.upper(), operation.path) in KEEP_SITE
        send = _sender(report, base_url, account, keep_site, turns, timeout)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            run = settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )(given(case=strategy)(send))
            try:
                run()
            except Unsatisfiable:  # nothing of this operation can violate the schema (no parameters)
                continue
            except Exception as exc:  # schemathesis could not generate for this operation/mode
                name = f"{operation.method.upper()} {operation.path} ({mode.value})"
                report.other_failures.append(f"{name}: {exc!r}")
    return report
