"""The OAuth login's state between ``/start`` and ``/callback``, kept in the browser, not on the server.

``/start`` puts the ``state`` value, the provider and the PKCE verifier in one cookie, encrypted
and authenticated (Fernet, key derived from ``SECRET_KEY``) and valid for ``OAUTH_TTL`` seconds.
Nothing is stored server-side, so a flood of ``/start`` requests cannot fill or evict the shared
cache (the old design kept each start in it); ``/start`` is also rate-limited per client IP.

The callback accepts the login only when the cookie opens under our key, is fresh, names the
same provider and carries the ``state`` the provider sent back (so a login started in another
browser, or a forged callback, is refused). The verifier never leaves the browser in clear.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

import msgspec
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ("OAuthState", "open_state", "seal_state")


class _Sealed(msgspec.Struct, forbid_unknown_fields=True):
    s: str
    p: str
    v: str


@dataclass(frozen=True, slots=True)
class OAuthState:
    state: str
    provider: str
    verifier: str


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"datafast oauth state").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal_state(secret_key: str, state: OAuthState) -> str:
    """The cookie value for a login just started."""
    raw = msgspec.json.encode(_Sealed(state.state, state.provider, state.verifier))
    return _fernet(secret_key).encrypt(raw).decode()


def open_state(secret_key: str, cookie: str, *, provider: str, state: str, ttl: int) -> OAuthState | None:
    """The login started in this browser for ``provider`` with this ``state``, or None (expired,
    tampered with, sealed under another key, or another login)."""
    if not cookie or not state:
        return None
    try:
        sealed = msgspec.json.decode(_fernet(secret_key).decrypt(cookie.encode(), ttl=ttl), type=_Sealed)
    except (InvalidToken, msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None
    if sealed.p != provider or not hmac.compare_digest(sealed.s.encode(), state.encode()):
        return None
    return OAuthState(sealed.s, sealed.p, sealed.v)
