"""Contextual metadata end to end: a store whose interactions schema has DEVICE_TYPE, a trained
user-personalization campaign, and the request's ``context`` through the real HTTP server, both
the native /v1 API and boto3's personalize-runtime client."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.fernet import Fernet

from engine.api import create_app
from engine.config import load_settings
from engine.crypto import master_cipher
from engine.jobs.train import train
from engine.records import Interaction, Item
from engine.storage import Store
from engine.storage.access_keys import create_access_key
from tests.conftest import LiveServer
from tests.engine.api.conftest import Shop
from tests.engine.api.personalize.conftest import ACCOUNT, REGION, Aws

INTERACTIONS_SCHEMA = {
    "type": "record",
    "name": "Interactions",
    "namespace": "com.amazonaws.personalize.schema",
    "version": "1.0",
    "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "EVENT_TYPE", "type": "string"},
        {"name": "DEVICE_TYPE", "type": "string", "categorical": True},
        {"name": "TIMESTAMP", "type": "long"},
    ],
}
MOBILE = {"DEVICE_TYPE": "mobile"}
DESKTOP = {"DEVICE_TYPE": "desktop"}


def device_shoppers() -> list:
    """Every shopper uses both devices; on a phone they browse phone cases (m0..m7), at a desk
    they browse desk lamps (d0..d7). Only the device tells which a shopper wants next."""
    rng = np.random.default_rng(0)
    records: list = [Item(f"m{i}", {"CATEGORY_L1": "phone-cases"}) for i in range(8)]
    records += [Item(f"d{i}", {"CATEGORY_L1": "desk-lamps"}) for i in range(8)]
    t = 1_700_000_000
    for u in range(80):
        for _ in range(12):
            t += 60
            device = "mobile" if rng.random() < 0.5 else "desktop"
            item = f"{device[0]}{rng.integers(0, 8)}"
            records.append(Interaction(f"u{u}", item, "view", t, context={"DEVICE_TYPE": device}))
    return records


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("context")
    store = Store(f"sqlite:///{tmp}/context.db")
    store.create_dataset_group("shop")
    store.put_schema("shop", "INTERACTIONS", INTERACTIONS_SCHEMA)
    store.ingest("shop", device_shoppers())
    version = train(
        store,
        tmp / "artifacts",
        dataset_group="shop",
        recipe="user-personalization",
        solution="for-you",
        hyperparameters={"factors": 8, "iterations": 8},
    )
    # No exploration: every slot of these lists is the model's, so the context's effect is all there is.
    store.create_campaign("for-you", version.id, {"explorationWeight": 0})
    settings = load_settings(
        database_url=store.database_url,
        artifact_dir=str(tmp / "artifacts"),
        master_key=Fernet.generate_key().decode(),
        aws_region=REGION,
        aws_account=ACCOUNT,
    )
    pair = create_access_key(store, "shop", master_cipher(settings))
    secret_key, _ = store.create_api_key("shop", "secret")
    tracking_id = store.create_event_tracker("shop", "site")
    with LiveServer(create_app(settings, store=store)) as server:
        yield (
            Shop(server.url, store, "", secret_key, tracking_id),
            Aws(server.url, store, pair.access_key_id, pair.secret_access_key, tracking_id),
        )
    store.close()


def native(servers, user_id: str, context: dict | None, n: int = 5) -> list[str]:
    shop, _ = servers
    body: dict = {"campaign": "for-you", "userId": user_id, "numResults": n}
    if context is not None:
        body["context"] = context
    r = shop.post("/v1/recommendations", body, key=shop.secret_key)
    assert r.status_code == 200, r.text
    return [i["itemId"] for i in r.json()["itemList"]]


def wire(servers, user_id: str, context: dict | None, n: int = 5) -> list[str]:
    _, aws = servers
    runtime = aws.client("personalize-runtime")
    kwargs = {"context": context} if context is not None else {}
    answer = runtime.get_recommendations(
        campaignArn=aws.arn("campaign/for-you"), userId=user_id, numResults=n, **kwargs
    )
    return [i["itemId"] for i in answer["itemList"]]


@pytest.mark.parametrize("ask", [native, wire], ids=["v1", "boto3"])
def test_the_device_decides_what_leads_the_list(servers, ask):
    # A shopper the model knows (history on both devices), and one with no events at all.
    for user, lead in (("u3", 3), ("someone-new", 5)):
        on_phone = ask(servers, user, MOBILE)
        at_desk = ask(servers, user, DESKTOP)
        assert all(i.startswith("m") for i in on_phone[:lead]), (user, on_phone)
        assert all(i.startswith("d") for i in at_desk[:lead]), (user, at_desk)


@pytest.mark.parametrize("ask", [native, wire], ids=["v1", "boto3"])
def test_context_nobody_trained_on_changes_nothing(servers, ask):
    """Personalize learns context from the interactions' contextual fields; a key or value that is
    not among them carries no information, so it is ignored rather than refused."""
    plain = ask(servers, "u3", None, n=10)
    assert ask(servers, "u3", {"SCREEN_THEME": "dark"}, n=10) == plain
    assert ask(servers, "u3", {"DEVICE_TYPE": "smart-fridge"}, n=10) == plain
    assert ask(servers, "u3", {"device_type": "mobile"}, n=10) == ask(servers, "u3", MOBILE, n=10)


def test_personalized_ranking_reorders_by_context(servers):
    shop, aws = servers
    input_list = ["d0", "m0", "d1", "m1"]
    for context, lead in ((MOBILE, "m"), (DESKTOP, "d")):
        r = shop.post(
            "/v1/personalize-ranking",
            {"campaign": "for-you", "userId": "someone-new", "inputList": input_list, "context": context},
            key=shop.secret_key,
        )
        assert r.status_code == 200, r.text
        assert {i["itemId"][0] for i in r.json()["personalizedRanking"][:2]} == {lead}
        answer = aws.client("personalize-runtime").get_personalized_ranking(
            campaignArn=aws.arn("campaign/for-you"), userId="someone-new", inputList=input_list, context=context
        )
        assert {i["itemId"][0] for i in answer["personalizedRanking"][:2]} == {lead}


def test_a_malformed_context_is_refused(servers):
    shop, aws = servers
    runtime = aws.client("personalize-runtime")
    with pytest.raises(runtime.exceptions.InvalidInputException) as caught:
        runtime.get_recommendations(
            campaignArn=aws.arn("campaign/for-you"), userId="u3", context={"DEVICE TYPE": "mobile"}
        )
    assert "context keys are field names" in caught.value.response["Error"]["Message"]
    for path, body in (
        ("/v1/recommendations", {"campaign": "for-you", "userId": "u3"}),
        ("/v1/personalize-ranking", {"campaign": "for-you", "userId": "u3", "inputList": ["m0"]}),
    ):
        for context in ({"DEVICE TYPE": "mobile"}, {"DEVICE_TYPE": 3}, {"DEVICE_TYPE": "x" * 1001}):
            r = shop.post(path, {**body, "context": context}, key=shop.secret_key)
            assert r.status_code == 400, (path, context, r.text)
            assert "context" in r.text
