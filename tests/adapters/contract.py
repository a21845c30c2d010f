"""The contract every platform adapter passes (django-anymail's ``webhook_cases`` idea).

A platform's test inherits :class:`AdapterContract` and supplies a dozen lines::

    class TestWooCommerceContract(AdapterContract):
        adapter_class = WooCommerceAdapter
        personal_data = ("john.doe@example.com", "John", "Doe", "969 Market")

        def topic_bodies(self) -> dict[str, bytes]:
            return {"order.created": read_payload("woocommerce_order_created.json")}

        def make_delivery(self, body, *, topic, secret, delivery_id="d-1") -> Delivery:
            headers = {"X-WC-Webhook-Topic": topic, "X-WC-Webhook-Delivery-ID": delivery_id}
            if secret is not None:
                headers["X-WC-Webhook-Signature"] = woocommerce_sign(body, secret)
            return Delivery.of(body, headers)

The class name does not start with ``Test``, so pytest collects its tests only through subclasses.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from adapters import ADAPTERS
from adapters.actions import DisconnectStore, ExportShopper, ForgetShopper
from adapters.base import Adapter, Delivery, PayloadError, SignatureError
from engine.records import Alias, Erasure, Interaction, Item, User

#: What parse() may return: engine records and the intake's privacy/lifecycle actions.
RECORD_TYPES = (Interaction, Item, User, Erasure, Alias, ForgetShopper, ExportShopper, DisconnectStore)


class AdapterContract:
    """Security and parsing guarantees shared by every adapter."""

    #: The adapter under test.
    adapter_class: ClassVar[type[Adapter]]
    #: The secret deliveries are signed with in these tests.
    secret: ClassVar[str] = "contract-secret"
    #: A topic name the platform does not send (or the adapter does not handle).
    unknown_topic: ClassVar[str] = "contract/no-such-topic"
    #: Strings of personal data found in :meth:`topic_bodies` that no record may contain.
    personal_data: ClassVar[tuple[str, ...]] = ()
    #: False for platforms that send no delivery id (the intake then dedupes on a body hash).
    sends_delivery_id: ClassVar[bool] = True
    #: False where the platform authenticates with a static token rather than a signature over
    #: the body (Magento without signing, mParticle): an altered body cannot be detected there.
    signs_body: ClassVar[bool] = True
    #: Topics the platform's issue lists: each must be in :meth:`topic_bodies` (opt-in).
    required_topics: ClassVar[tuple[str, ...]] = ()

    # ----------------------------------------------------------------- what a platform supplies
    def topic_bodies(self) -> dict[str, bytes]:
        """Every topic the adapter handles → a realistic body for it (call pytest.skip if absent)."""
        raise NotImplementedError

    def make_delivery(
        self, body: bytes, *, topic: str, secret: str | None, delivery_id: str = "contract-delivery-1"
    ) -> Delivery:
        """The delivery the platform would send; ``secret=None`` leaves the signature out."""
        raise NotImplementedError

    def connection_config(self) -> dict[str, Any]:
        """The connection settings the adapter is built from (a public key, API credentials)."""
        return {}

    # ----------------------------------------------------------------- helpers
    @pytest.fixture
    def adapter(self) -> Adapter:
        return self.adapter_class.from_connection(self.connection_config())

    def first_body(self) -> tuple[str, bytes]:
        return next(iter(self.topic_bodies().items()))

    # ----------------------------------------------------------------- registry
    def test_adapter_is_registered_under_its_platform(self) -> None:
        assert ADAPTERS[self.adapter_class.platform] is self.adapter_class

    # ----------------------------------------------------------------- signatures
    def test_good_signature_is_accepted(self, adapter: Adapter) -> None:
        for topic, body in self.topic_bodies().items():
            adapter.verify(self.make_delivery(body, topic=topic, secret=self.secret), self.secret)

    def test_signature_made_with_another_secret_is_rejected(self, adapter: Adapter) -> None:
        topic, body = self.first_body()
        delivery = self.make_delivery(body, topic=topic, secret="not-" + self.secret)
        with pytest.raises(SignatureError):
            adapter.verify(delivery, self.secret)

    def test_altered_body_is_rejected(self, adapter: Adapter) -> None:
        if not self.signs_body:
            pytest.skip("authenticated by a static token: the body itself is not signed")
        topic, body = self.first_body()
        signed = self.make_delivery(body, topic=topic, secret=self.secret)
        altered = Delivery(body=body + b" ", headers=signed.headers)
        with pytest.raises(SignatureError):
            adapter.verify(altered, self.secret)

    def test_missing_signature_is_rejected(self, adapter: Adapter) -> None:
        topic, body = self.first_body()
        with pytest.raises(SignatureError):
            adapter.verify(self.make_delivery(body, topic=topic, secret=None), self.secret)

    def test_signature_error_answers_401(self) -> None:
        assert SignatureError.http_status == 401

    def test_verification_does_not_need_a_parsable_body(self, adapter: Adapter) -> None:
        # Signatures are over raw bytes: verifying must never parse (or re-serialise) the body.
        body = b"\xff\xfe not json at all"
        adapter.verify(self.make_delivery(body, topic=self.first_body()[0], secret=self.secret), self.secret)

    # ----------------------------------------------------------------- identity
    def test_delivery_id_is_present(self, adapter: Adapter) -> None:
        topic, body = self.first_body()
        delivery = self.make_delivery(body, topic=topic, secret=self.secret, delivery_id="abc-123")
        if self.sends_delivery_id:
            assert adapter.delivery_id(delivery) == "abc-123"
        else:
            assert adapter.delivery_id(delivery) is None

    def test_topic_is_read_from_the_delivery(self, adapter: Adapter) -> None:
        for topic, body in self.topic_bodies().items():
            assert adapter.topic(self.make_delivery(body, topic=topic, secret=self.secret)) == topic

    # ----------------------------------------------------------------- parsing
    def test_every_listed_topic_parses_into_records(self, adapter: Adapter) -> None:
        for topic, body in self.topic_bodies().items():
            records = adapter.parse(self.make_delivery(body, topic=topic, secret=self.secret))
            assert records, f"{topic}: no records from a realistic body"
            for record in records:
                assert isinstance(record, RECORD_TYPES), f"{topic}: {record!r} is not an engine record"
                if isinstance(record, Interaction):
                    assert record.user_id and isinstance(record.user_id, str)
                    assert record.item_id and isinstance(record.item_id, str)
                    assert isinstance(record.timestamp, float) and record.timestamp > 0

    def test_every_required_topic_has_a_realistic_body(self) -> None:
        missing = sorted(set(self.required_topics) - set(self.topic_bodies()))
        assert not missing, f"no realistic body for {missing}"

    def test_a_genuine_delivery_is_not_a_ping_and_is_answered_2xx(self, adapter: Adapter) -> None:
        for topic, body in self.topic_bodies().items():
            delivery = self.make_delivery(body, topic=topic, secret=self.secret)
            assert not adapter.is_ping(delivery)
            ack = adapter.acknowledgement(delivery)
            assert ack is None or 200 <= ack.status < 300

    def test_parsing_is_deterministic(self, adapter: Adapter) -> None:
        # Replayed deliveries must produce the same ids (event ids, anonymous user ids).
        for topic, body in self.topic_bodies().items():
            delivery = self.make_delivery(body, topic=topic, secret=self.secret)
            assert adapter.parse(delivery) == adapter.parse(delivery)

    def test_unknown_topic_gives_no_records_and_a_log_line(
        self, adapter: Adapter, caplog: pytest.LogCaptureFixture
    ) -> None:
        _topic, body = self.first_body()
        with caplog.at_level(logging.INFO):
            records = adapter.parse(self.make_delivery(body, topic=self.unknown_topic, secret=self.secret))
        assert records == []
        assert self.unknown_topic in caplog.text

    def test_unknown_topic_with_an_unreadable_body_does_not_crash(self, adapter: Adapter) -> None:
        delivery = self.make_delivery(b"\x00garbage", topic=self.unknown_topic, secret=self.secret)
        assert adapter.parse(delivery) == []

    def test_known_topic_with_a_body_that_is_not_json_is_a_payload_error(self, adapter: Adapter) -> None:
        for topic in self.topic_bodies():
            with pytest.raises(PayloadError):
                adapter.parse(self.make_delivery(b"<html>oops</html>", topic=topic, secret=self.secret))

    def test_records_hold_no_personal_data(self, adapter: Adapter) -> None:
        dumped: list[Any] = []
        for topic, body in self.topic_bodies().items():
            dumped.extend(adapter.parse(self.make_delivery(body, topic=topic, secret=self.secret)))
        # An erasure's identifiers (e-mail, phone) only find raw bodies to purge; they are never stored.
        dumped = [replace(r, identifiers=()) if isinstance(r, ForgetShopper) else r for r in dumped]
        text = repr(dumped).lower()
        for value in self.personal_data:
            assert value.lower() not in text, f"personal data {value!r} leaked into records"
