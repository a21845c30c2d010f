"""AWS-style access keys for the Personalize-compatible API (SigV4)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from engine.crypto import Cipher
from engine.errors import Unauthorized
from engine.storage import tables as t
from engine.storage.store import Store

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class AccessKeyPair:
    access_key_id: str
    secret_access_key: str
    dataset_group: str


def create_access_key(store: Store, dataset_group: str, cipher: Cipher) -> AccessKeyPair:
    """A new key pair; the secret is returned once and stored only encrypted."""
    group = store.get_dataset_group(dataset_group)
    # "SW" + 18 characters: the shape of an AWS access key id (20 upper-case characters).
    access_key_id = "SW" + "".join(secrets.choice(_ALPHABET) for _ in range(18))
    secret = secrets.token_urlsafe(30)[:40]
    with store.session() as s, s.begin():
        s.add(
            t.AccessKey(dataset_group_id=group.id, access_key_id=access_key_id, secret_encrypted=cipher.encrypt(secret))
        )
    return AccessKeyPair(access_key_id, secret, dataset_group)


def lookup_access_key(store: Store, access_key_id: str, cipher: Cipher) -> AccessKeyPair:
    with store.session() as s:
        row = s.execute(
            select(t.AccessKey, t.DatasetGroup.name)
            .join(t.DatasetGroup, t.DatasetGroup.id == t.AccessKey.dataset_group_id)
            .where(t.AccessKey.access_key_id == access_key_id)
        ).first()
    if row is None or row[0].revoked:
        raise Unauthorized("The security token included in the request is invalid.")
    key, group = row
    return AccessKeyPair(key.access_key_id, cipher.decrypt(key.secret_encrypted), group)
