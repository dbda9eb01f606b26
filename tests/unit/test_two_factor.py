"""The sign-in challenge of two-factor accounts: signed, bound to its user, short-lived."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from datafast.db.models import User
from datafast.domain.accounts.tokens import sign
from datafast.domain.accounts.twofactor import CHALLENGE_TTL, challenge, user_of_challenge
from datafast.errors import Unauthorized

KEY = "k" * 40


def test_a_challenge_names_its_user_for_five_minutes() -> None:
    user = User(id=uuid.uuid4(), email="a@example.com")
    token = challenge(KEY, user)

    assert user_of_challenge(KEY, token) == user.id
    expires = int(token.split(".")[1])
    assert 0 < expires - time.time() <= CHALLENGE_TTL


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # signature
        lambda t: uuid.uuid4().hex + t[32:],  # another user
        lambda t: "",
        lambda t: "a.b.c.d",
    ],
)
def test_a_tampered_challenge_is_refused(tamper: Callable[[str], str]) -> None:
    token = challenge(KEY, User(id=uuid.uuid4(), email="a@example.com"))
    with pytest.raises(Unauthorized):
        user_of_challenge(KEY, tamper(token))


def test_an_expired_or_foreign_key_challenge_is_refused() -> None:
    value = f"{uuid.uuid4().hex}.{int(time.time()) - 1}.nonce"
    expired = f"{value}.{sign(KEY, 'two-factor-challenge', value)}"
    with pytest.raises(Unauthorized):
        user_of_challenge(KEY, expired)
    with pytest.raises(Unauthorized):
        user_of_challenge("other" * 10, challenge(KEY, User(id=uuid.uuid4(), email="a@example.com")))
