"""The CSP's ``frame-ancestors``: only what is an origin reaches the header, whatever is stored."""

from __future__ import annotations

import pytest

from datafast.domain.sites.sharing import normalize_embed_origins
from datafast.server.headers import CONTENT_SECURITY_POLICY, content_security_policy


def _frame_ancestors(policy: str) -> str:
    return policy.split("; ")[-1]


def test_without_origins_nobody_may_frame_a_page() -> None:
    assert _frame_ancestors(CONTENT_SECURITY_POLICY) == "frame-ancestors 'none'"
    assert content_security_policy([]) == CONTENT_SECURITY_POLICY


def test_origins_are_listed_and_the_rest_of_the_policy_stays() -> None:
    policy = content_security_policy(
        ["https://blog.example.com", "http://localhost:5173", "https://[::1]:8443"]
    )
    assert _frame_ancestors(policy) == (
        "frame-ancestors https://blog.example.com http://localhost:5173 https://[::1]:8443"
    )
    assert policy.removesuffix(_frame_ancestors(policy)) == CONTENT_SECURITY_POLICY.removesuffix(
        "frame-ancestors 'none'"
    )


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example; script-src *",
        "*",
        "'self'",
        "https:",
        "https://a.example/path",
        "HTTPS://A.EXAMPLE",
    ],
)
def test_a_value_that_is_no_normalised_origin_never_reaches_the_header(value: str) -> None:
    assert _frame_ancestors(content_security_policy([value])) == "frame-ancestors 'none'"
    assert _frame_ancestors(content_security_policy(["https://ok.example", value])) == (
        "frame-ancestors https://ok.example"
    )


def test_what_the_share_links_store_is_what_the_header_accepts() -> None:
    stored = normalize_embed_origins(
        [
            "HTTPS://Blog.Example.com:443/",
            "http://LOCALHOST:3000",
            "https://bücher.example",
            "http://[::1]:8080",
        ]
    )
    assert stored == [
        "https://blog.example.com",
        "http://localhost:3000",
        "https://xn--bcher-kva.example",
        "http://[::1]:8080",
    ]
    assert _frame_ancestors(content_security_policy(stored)) == "frame-ancestors " + " ".join(stored)
