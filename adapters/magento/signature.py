"""Adobe Commerce webhook signatures: RSA / SHA-256 over the base64 of the body.

Commerce signs with the private half of a key pair generated in the Admin (Stores > Configuration >
Adobe Services > Webhooks > "Regenerate key pair") and sends ``x-adobe-commerce-webhook-signature``.
Adobe's verification sample is ``crypto.createVerify('SHA256').update(base64(body)).verify(publicKey,
signature, 'base64')`` (platforms.md §3.1): PKCS#1 v1.5 padding, Node's default for RSA keys.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.errors import InvalidInput


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """The Admin's public key (PEM); a clear error for anything else, at ``shelfwise connect`` time."""
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"public_key is not a PEM public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidInput(f"public_key must be an RSA key, not {type(key).__name__}")
    return key


def signature_is_valid(public_key: rsa.RSAPublicKey, body: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(raw, base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def sign(body: bytes, private_key: rsa.RSAPrivateKey) -> str:
    """What Commerce sends for ``body``: for tests and tools, made by the scheme the check expects."""
    return base64.b64encode(private_key.sign(base64.b64encode(body), padding.PKCS1v15(), hashes.SHA256())).decode()
