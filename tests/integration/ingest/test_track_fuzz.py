"""Property: whatever a client sends to /track, the answer is never a 500.

Two generators: Hypothesis' own JSON-ish values, and the hostile bodies of :mod:`tests.trackfuzz`
(invalid UTF-8, truncated JSON, deep nesting, huge strings) that ``bench/fuzz_track.py`` sends
100,000 of to a live server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from datafast.app import create_app
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_config_db
from datafast.domain.accounts.services import UserService
from datafast.domain.sites.services import WebsiteService
from datafast.settings import Settings
from tests.trackfuzz import FIELDS, KINDS, make_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=20,
)
events = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=12)
bodies = st.one_of(
    st.binary(max_size=2000),
    events.map(lambda e: json.dumps(e).encode()),
    st.lists(events, max_size=4).map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)


async def _create_site(settings: Settings) -> str:
    config = sqlalchemy_config(settings)
    await migrate_config_db(config.get_engine())
    async with config.get_session() as session:
        owner = await UserService(session=session).create_user("fuzz@example.com", "password1")
        site = await WebsiteService(session=session).create_site(owner, "fuzz.example")
        await session.commit()
    await config.get_engine().dispose()
    return str(site.id)


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
def test_random_bodies_never_cause_a_500(settings: Settings) -> None:
    app = create_app(settings)
    site_id = asyncio.run(_create_site(settings))  # bodies naming it reach enrichment and the spool

    with TestClient(app) as client:

        @given(
            body=bodies,
            content_type=st.sampled_from(["application/json", "text/plain", "", "text/html"]),
            valid_site=st.booleans(),
        )
        @hypothesis_settings(
            max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def check(body: bytes, content_type: str, valid_site: bool) -> None:
            if valid_site and body.startswith(b"{") and body != b"{}":
                body = body.replace(b'"website_id"', b'"_"', 1).replace(b'"page_url"', b'"_"', 1)
                prefix = b'{"website_id": "%s", "page_url": "https://fuzz.example/", ' % site_id.encode()
                body = prefix + body[1:]
            headers: dict[str, Any] = {"content-type": content_type} if content_type else {}
            response = client.post("/track", content=body, headers=headers)
            assert response.status_code < 500, (body, response.text)
            assert response.status_code in (202, 400, 404, 413, 415)
            seen.add(response.status_code)
            if valid_site and response.status_code != 202 and len(refused) < 5:
                refused.append((body, response.text))

        seen: set[int] = set()
        refused: list[tuple[bytes, str]] = []
        check()
        # The bodies reached every outcome, storage included, not just the JSON parser.
        assert {202, 400} <= seen, refused


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
def test_hostile_bodies_are_answered_4xx_or_accepted_never_500(settings: Settings) -> None:
    app = create_app(settings)
    site_id = asyncio.run(_create_site(settings))
    kinds: dict[str, set[int]] = {}

    with TestClient(app) as client:

        @given(rng=st.randoms(use_true_random=False))
        @hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
        def check(rng: Any) -> None:
            kind, body = make_body(rng, site_id, "fuzz.example")
            response = client.post("/track", content=body, headers={"content-type": "application/json"})
            assert response.status_code in (202, 400, 404, 413), (kind, body[:300], response.text)
            kinds.setdefault(kind, set()).add(response.status_code)

        check()

    assert set(kinds) == set(KINDS)  # every kind of body was sent
    assert kinds["invalid_utf8"] == {400}  # never stored, not even with the bad bytes in a skipped field
    assert kinds["deep"] == {400}
    assert 413 in kinds["huge"]
