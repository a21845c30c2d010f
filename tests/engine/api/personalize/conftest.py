"""A real server with trained campaigns, and real boto3 clients pointed at it."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config
from cryptography.fernet import Fernet

from engine.api import create_app
from engine.config import load_settings
from engine.crypto import master_cipher
from engine.jobs.train import train
from engine.storage import Store
from engine.storage.access_keys import create_access_key
from tests.conftest import LiveServer
from tests.engine.api.conftest import catalog_events

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass
class Aws:
    url: str
    store: Store
    access_key_id: str
    secret_access_key: str
    tracking_id: str

    def client(self, service: str, *, key: str | None = None, secret: str | None = None, **kwargs):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key or self.access_key_id,
            aws_secret_access_key=secret or self.secret_access_key,
            config=Config(retries={"max_attempts": 1}, **kwargs),
        )

    def arn(self, resource: str) -> str:
        return f"arn:aws:personalize:{REGION}:{ACCOUNT}:{resource}"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("personalize")
    store = Store(f"sqlite:///{tmp}/wire.db")
    store.create_dataset_group("shop")
    store.create_dataset_group("other-shop")
    store.put_schema(
        "shop",
        "ITEMS",
        {
            "type": "record",
            "name": "Items",
            "namespace": "com.amazonaws.personalize.schema",
            "version": "1.0",
            "fields": [
                {"name": "ITEM_ID", "type": "string"},
                {"name": "TITLE", "type": "string"},
                {"name": "PRICE", "type": "float"},
                {"name": "CATEGORY_L1", "type": "string", "categorical": True},
                {"name": "CREATION_TIMESTAMP", "type": "long"},
            ],
        },
    )
    store.ingest("shop", catalog_events())
    for campaign, recipe, hp in [
        ("for-you", "user-personalization", {"factors": 8, "iterations": 10}),
        ("also-bought", "sims", {}),
    ]:
        version = train(
            store, tmp / "artifacts", dataset_group="shop", recipe=recipe, solution=campaign, hyperparameters=hp
        )
        store.create_campaign(campaign, version.id)
    settings = load_settings(
        database_url=store.database_url,
        artifact_dir=str(tmp / "artifacts"),
        master_key=Fernet.generate_key().decode(),
        aws_region=REGION,
        aws_account=ACCOUNT,
    )
    pair = create_access_key(store, "shop", master_cipher(settings))
    tracking_id = store.create_event_tracker("shop", "site")
    with LiveServer(create_app(settings, store=store)) as server:
        yield Aws(server.url, store, pair.access_key_id, pair.secret_access_key, tracking_id)
    store.close()
