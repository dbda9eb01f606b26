"""Random secrets and their stored form: only a SHA-256 of a 256-bit token is kept at rest.

A fast hash is enough for tokens this long (nothing to brute-force); passwords use argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ("hash_token", "new_token", "sign", "signature_matches")


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret_key: str, purpose: str, value: str) -> str:
    """An HMAC of ``value`` bound to ``purpose`` (so one signature cannot stand in for another)."""
    return hmac.new(secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def signature_matches(secret_key: str, purpose: str, value: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret_key, purpose, value), signature)
