"""Webhook signing secrets at rest: Fernet (AES-128-CBC + HMAC) with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ("SecretBox",)


class SecretBox:
    """Encrypts and decrypts connection secrets. Changing SECRET_KEY makes old ones unreadable."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"datafast payment connection secrets"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str | None:
        """The secret, or None when it was sealed under another SECRET_KEY."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None
