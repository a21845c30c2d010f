"""Encryption of stored secrets under the server's master key (Fernet: AES-128-CBC + HMAC).

SigV4 verification needs each access key's secret in the clear, so hashing is not an option;
encrypting them keeps a copied database file from handing out working credentials.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.config import Settings
from engine.errors import InvalidInput, ShelfwiseError


class Cipher:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise InvalidInput("the master key must be a Fernet key (32 url-safe base64-encoded bytes)") from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ShelfwiseError("a stored secret cannot be decrypted: was the master key changed?") from exc


def master_key(settings: Settings) -> bytes:
    """The configured master key, or the key file's (created, mode 0600, on first use)."""
    if settings.master_key:
        return settings.master_key.encode()
    path: Path = settings.resolved_master_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return path.read_bytes().strip()


def master_cipher(settings: Settings) -> Cipher:
    return Cipher(master_key(settings))


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A key for one purpose (signing click links, demo form tokens), derived from the master key
    with HMAC-SHA256, so no second secret has to be configured and the purposes never share a key."""
    return hmac.new(master_key(settings), f"shelfwise:{purpose}".encode(), hashlib.sha256).digest()
