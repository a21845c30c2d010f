"""``shelfwise webhooks list|replay`` and ``shelfwise connect --set``, run as the CLI runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.shopify import sign
from engine.cli import main
from engine.storage.store import Store
from tests.adapters import bodies
from webhooks.acceptance import accept
from webhooks.settings import IntakeSettings
from webhooks.worker import DeliveryWorker


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = Store(url)
    store.create_dataset_group("shop1")
    store.connect("shop1", "shopify", "s3cret")
    store.close()
    return url


def cli(db: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([*args, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def deliver(db: str, body: bytes, key: str, topic: str = "orders/create") -> int:
    """Store a delivery as the intake does and let one worker pass process it."""
    store = Store(db)
    try:
        headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": key, "X-Shopify-Hmac-Sha256": sign(body, "s3cret")}
        delivery_id = accept(store, "shop1", "shopify", headers, body).delivery_id
        DeliveryWorker(store, IntakeSettings()).run_once()
        return delivery_id
    finally:
        store.close()


def test_failed_deliveries_are_listed_and_replayed_once_the_cause_is_fixed(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Store, *args: Any, **kwargs: Any) -> dict[str, int]:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "ingest", broken)
        failed = deliver(db, bodies.shared("shopify_orders_create.json"), "wh-1")
    good = deliver(db, b'{"id": 1}', "wh-2", topic="themes/publish")

    code, out, _ = cli(db, "webhooks", "list", "--failed", "--json", capsys=capsys)
    assert code == 0
    (row,) = json.loads(out)["deliveries"]
    assert (row["id"], row["status"], row["topic"]) == (failed, "failed", "orders/create")
    assert "disk full" in row["error"]

    code, out, _ = cli(db, "webhooks", "list", capsys=capsys)
    assert code == 0 and f"{good}" in out and "processed" in out and "error: RuntimeError: disk full" in out

    code, out, _ = cli(db, "webhooks", "replay", "--failed", capsys=capsys)
    assert code == 0 and f"delivery {failed}: processed (5 records)" in out
    code, out, _ = cli(db, "webhooks", "list", "--failed", capsys=capsys)
    assert out.strip() == "no deliveries failed"
    store = Store(db)
    assert store.count_interactions("shop1") == 3
    store.close()


def test_replay_by_id_reports_what_it_did_not_replay(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    processed = deliver(db, b'{"id": 1}', "wh-1", topic="themes/publish")
    code, out, _ = cli(db, "webhooks", "replay", "--id", str(processed), "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out)["replayed"] == [
        {"id": processed, "status": "processed", "replayed": False, "error": "not replayed: the delivery is processed"}
    ]


def test_replay_of_a_delivery_that_still_fails_exits_non_zero(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    broken = deliver(db, b"not json", "wh-1")
    code, out, err = cli(db, "webhooks", "replay", "--id", str(broken), capsys=capsys)
    assert code == 1 and "not JSON" in out
    assert err.strip() == "shelfwise: error: 1 of 1 deliveries still fail"


def test_replay_of_an_unknown_id_is_a_one_line_error(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(db, "webhooks", "replay", "--id", "999", capsys=capsys)
    assert code == 1 and err.strip() == "shelfwise: error: no webhook deliveries with id 999"


def test_connect_takes_settings_and_a_key_from_a_file(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "commerce.pem").write_bytes(pem)
    code, out, _ = cli(
        db,
        "connect",
        "magento",
        "--dataset-group",
        "shop1",
        "--secret",
        "tok",
        "--set",
        "base_url=https://shop.example/rest/default",
        "--set",
        f"public_key=@{tmp_path / 'commerce.pem'}",
        "--json",
        capsys=capsys,
    )
    assert code == 0 and json.loads(out)["webhookPath"] == "/webhooks/magento/shop1"
    store = Store(db)
    secret, config = store.connection("shop1", "magento")
    store.close()
    assert secret == "tok"
    assert config == {"base_url": "https://shop.example/rest/default", "public_key": pem.decode()}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("public_key=not a key", "public_key is not a PEM public key"),
        ("public_key=@/no/such/file.pem", "--set public_key: cannot read /no/such/file.pem"),
        ("novalue", "--set 'novalue': expected KEY=VALUE"),
    ],
)
def test_connect_refuses_bad_settings_in_one_line(
    db: str, setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        db, "connect", "magento", "--dataset-group", "shop1", "--secret", "t", "--set", setting, capsys=capsys
    )
    assert code == 1 and err.startswith(f"shelfwise: error: {message}")


def test_connect_rotate_keeps_the_old_secret_for_the_grace_period(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        db, "connect", "shopify", "--dataset-group", "shop1", "--secret", "n3w", "--rotate", "--grace", "2h",
        "--json", capsys=capsys,
    )  # fmt: skip
    assert code == 0 and json.loads(out)["previousSecretAcceptedForSeconds"] == 7200
    body = b'{"id": 1, "line_items": []}'
    store = Store(db)
    try:
        for secret, key in (("s3cret", "old"), ("n3w", "new"), ("other", "forged")):
            headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": key}
            headers["X-Shopify-Hmac-Sha256"] = sign(body, secret)
            status = accept(store, "shop1", "shopify", headers, body).http_status
            assert status == (401 if key == "forged" else 200), key
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rotate", "--grace", "0"), "--grace must be a positive duration"),
        (("--rotate", "--grace", "soon"), "invalid duration"),
    ],
)
def test_connect_rotate_refuses_a_bad_grace_period(
    db: str, args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(db, "connect", "shopify", "--dataset-group", "shop1", "--secret", "n3w", *args, capsys=capsys)
    assert code == 1 and err.startswith(f"shelfwise: error: {message}"), err


def test_rotating_a_secret_needs_an_existing_connection(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("connect", "woocommerce", "--dataset-group", "shop1", "--secret", "x", "--rotate")
    code, _, err = cli(db, *args, capsys=capsys)
    assert code == 1 and "no secret to rotate" in err
