"""Sign-up, login, sessions, CSRF, the login rate limit and API keys, on both modes."""

from __future__ import annotations

import time

from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.app import create_app
from datafast.domain.accounts.auth import LOGIN_LIMIT_PER_CLIENT
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import PASSWORD, Client, login, signup, unique_email


async def test_signup_sets_a_30_day_httponly_lax_session_cookie(client: Client) -> None:
    email = unique_email()
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})

    assert response.status_code == 201, response.text
    assert response.json()["user"]["email"] == email
    assert response.json()["user"]["email_verified"] is False
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    session = cookies["datafast_session"]
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "max-age=2592000" in session
    assert "secure" not in session  # BASE_URL is http here
    assert "httponly" not in cookies["datafast_csrf"]  # the dashboard reads it


async def test_session_cookie_is_secure_when_base_url_is_https(make_settings: SettingsFactory) -> None:
    async with AsyncTestClient(create_app(make_settings(BASE_URL="https://analytics.example.com"))) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD}
        )

    assert response.status_code == 201
    cookies = response.headers.get_list("set-cookie")
    # __Host-: the browser only takes it Secure, Path=/, without Domain (no sibling subdomain can set it).
    for name in ("__Host-datafast_session=", "__Host-datafast_csrf="):
        cookie = next(c for c in cookies if c.startswith(name)).lower()
        assert "secure" in cookie
        assert "path=/;" in cookie or cookie.endswith("path=/")
        assert "domain=" not in cookie
    assert not any(c.startswith("datafast_session=") for c in cookies)


async def test_signup_rejects_weak_passwords_and_bad_emails(client: Client) -> None:
    for body in (
        {"email": unique_email(), "password": "short1"},
        {"email": unique_email(), "password": "no digits here"},
        {"email": "not-an-email", "password": PASSWORD},
        {"email": unique_email()},
    ):
        response = await client.post("/api/v1/auth/signup", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"


async def test_signup_twice_with_one_email_conflicts(client: Client) -> None:
    user = await signup(client)
    response = await client.post("/api/v1/auth/signup", json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 409


async def test_closed_signup_refuses(make_settings: SettingsFactory) -> None:
    async with AsyncTestClient(create_app(make_settings(SIGNUP_OPEN="false"))) as client:
        response = await client.post(
            "/api/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD}
        )

    assert response.status_code == 403
    assert "closed" in response.json()["detail"]


async def test_login_then_me_then_logout(client: Client) -> None:
    user = await signup(client)
    browser = await login(client, user.email)

    me = await browser.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == user.email
    assert me.json()["csrf_token"] == browser.csrf

    assert (await browser.post("/api/v1/auth/logout")).status_code == 204
    assert (await browser.get("/api/v1/auth/me")).status_code == 401
    # the other session (from sign-up) is untouched
    assert (await user.get("/api/v1/auth/me")).status_code == 200


async def test_logout_everywhere_ends_every_session(client: Client) -> None:
    user = await signup(client)
    other = await login(client, user.email)

    assert (await user.post("/api/v1/auth/logout-all")).status_code == 204

    assert (await user.get("/api/v1/auth/me")).status_code == 401
    assert (await other.get("/api/v1/auth/me")).status_code == 401


async def test_without_credentials_answers_401_problem(client: Client) -> None:
    response = await client.get("/api/v1/sites")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_cookie_writes_need_the_csrf_token(client: Client) -> None:
    user = await signup(client)

    missing = await user.post("/api/v1/sites", json={"domain": "csrf.example.com"}, csrf=False)
    wrong = await user.post(
        "/api/v1/sites", json={"domain": "csrf.example.com"}, csrf=False, headers={"X-CSRF-Token": "x" * 40}
    )
    right = await user.post("/api/v1/sites", json={"domain": f"csrf{time.time_ns()}.example.com"})

    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert right.status_code == 201, right.text
    # reads need no token
    assert (await user.get("/api/v1/sites", csrf=False)).status_code == 200


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: Client) -> None:
    user = await signup(client)
    wrong = await client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong pass 1"})
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": "wrong pass 1"}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert "set-cookie" not in wrong.headers


async def test_unknown_email_takes_as_long_as_a_wrong_password(client: Client) -> None:
    """No enumeration by timing: both check an argon2 hash (a dummy one for unknown accounts)."""
    user = await signup(client)

    async def timed(email: str, n: int = 2) -> float:
        # 2 + 2 failures: below the per-IP limit, so every answer is a real 401
        best = float("inf")
        for i in range(n):
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": f"wrong pass {i}"}
            )
            best = min(best, time.perf_counter() - started)
            assert response.status_code == 401
        return best

    known, unknown = await timed(user.email), await timed(unique_email())
    assert unknown > known * 0.5, (known, unknown)


async def test_sixth_failed_login_in_15_minutes_answers_429(client: Client) -> None:
    user = await signup(client)
    statuses = []
    for _ in range(6):
        response = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": "wrong pass 1"}
        )
        statuses.append(response.status_code)

    assert statuses == [401, 401, 401, 401, 401, 429]
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    # even the right password is refused while the account is locked
    right = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert right.status_code == 429


async def test_failed_logins_are_limited_per_ip_across_accounts(app: Litestar) -> None:
    # Password spraying: one guess at each of many accounts from one client.
    async with AsyncTestClient(app) as client:
        statuses = []
        for _ in range(LOGIN_LIMIT_PER_CLIENT + 1):
            response = await client.post(
                "/api/v1/auth/login", json={"email": unique_email(), "password": "wrong pass 1"}
            )
            statuses.append(response.status_code)

    assert statuses == [401] * LOGIN_LIMIT_PER_CLIENT + [429]


async def test_a_success_neither_counts_nor_clears_the_ip_count(client: Client) -> None:
    user = await signup(client)
    for _ in range(LOGIN_LIMIT_PER_CLIENT - 1):
        await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "wrong pass 1"})
    assert (
        await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    ).status_code == 200
    client.cookies.clear()
    last = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "wrong pass 1"})
    assert last.status_code == 401  # the success above did not use up a failure

    response = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429


async def test_api_key_is_shown_once_stored_hashed_and_revocable(client: Client) -> None:
    user = await signup(client)
    site = await user.create_site()

    created = await user.post("/api/v1/api-keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("dfk_")
    assert created.json()["api_key"]["prefix"] == key[:12]

    listed = await user.get("/api/v1/api-keys")
    assert listed.status_code == 200
    assert key not in listed.text
    assert listed.json()[0]["last_used_at"] is None

    bearer = {"Authorization": f"Bearer {key}"}
    assert (await client.get(f"/api/v1/sites/{site['id']}", headers=bearer)).status_code == 200
    assert (await user.get("/api/v1/api-keys")).json()[0]["last_used_at"] is not None

    key_id = created.json()["api_key"]["id"]
    assert (await user.delete(f"/api/v1/api-keys/{key_id}")).status_code == 204
    revoked = await client.get(f"/api/v1/sites/{site['id']}", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.headers["content-type"] == "application/problem+json"


async def test_api_keys_scoped_to_some_sites_and_read_only(client: Client) -> None:
    user = await signup(client)
    one, two = await user.create_site(), await user.create_site()
    scoped = (await user.post("/api/v1/api-keys", json={"sites": [one["id"]], "read_only": True})).json()[
        "key"
    ]
    bearer = {"Authorization": f"Bearer {scoped}"}

    assert (await client.get(f"/api/v1/sites/{one['id']}", headers=bearer)).status_code == 200
    assert (await client.get(f"/api/v1/sites/{two['id']}", headers=bearer)).status_code == 404
    assert [s["id"] for s in (await client.get("/api/v1/sites", headers=bearer)).json()] == [one["id"]]
    write = await client.patch(f"/api/v1/sites/{one['id']}", json={"name": "x"}, headers=bearer)
    assert write.status_code == 403
    # API keys do not manage API keys or the account
    assert (await client.get("/api/v1/api-keys", headers=bearer)).status_code == 403


async def test_api_key_for_a_site_of_someone_else_is_refused(client: Client) -> None:
    owner, other = await signup(client), await signup(client)
    site = await owner.create_site()

    response = await other.post("/api/v1/api-keys", json={"sites": [site["id"]]})

    assert response.status_code == 404


async def test_bad_authorization_headers_answer_401(client: Client) -> None:
    for header in ("Basic abc", "Bearer", "Bearer dfk_nope", "Bearer dfs_nope.1.2", "Token x"):
        response = await client.get("/api/v1/sites", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["content-type"] == "application/problem+json"


async def test_login_posted_from_another_site_is_refused(client: Client) -> None:
    user = await signup(client)
    body = {"email": user.email, "password": PASSWORD}

    foreign = await client.post("/api/v1/auth/login", json=body, headers={"Origin": "https://evil.example"})
    ours = await client.post("/api/v1/auth/login", json=body, headers={"Origin": "http://localhost:8000"})

    assert foreign.status_code == 403
    assert ours.status_code == 200


async def test_change_password_keeps_this_session_and_ends_the_others(client: Client) -> None:
    user = await signup(client)
    other = await login(client, user.email)

    wrong = await user.post(
        "/api/v1/account/password", json={"current_password": "nope 1", "new_password": "fresh pass 7"}
    )
    weak = await user.post(
        "/api/v1/account/password", json={"current_password": PASSWORD, "new_password": "weak"}
    )
    done = await user.post(
        "/api/v1/account/password", json={"current_password": PASSWORD, "new_password": "fresh pass 7"}
    )

    assert (wrong.status_code, weak.status_code, done.status_code) == (400, 400, 204)
    assert (await user.get("/api/v1/auth/me")).status_code == 200
    assert (await other.get("/api/v1/auth/me")).status_code == 401
    await login(client, user.email, "fresh pass 7")
