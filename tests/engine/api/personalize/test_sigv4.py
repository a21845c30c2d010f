"""Requests that are unsigned, stale or tampered with are refused in the AWS error shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.engine.api.personalize.conftest import REGION


def signed_request(aws, body: dict, *, when: datetime | None = None, tamper: bytes | None = None):
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST", url=aws.url + "/recommendations", data=data, headers={"Content-Type": "application/json"}
    )
    auth = SigV4Auth(Credentials(aws.access_key_id, aws.secret_access_key), "personalize", REGION)
    if when is None:
        auth.add_auth(request)
    else:
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        auth._inject_signature_to_request(
            request, auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        )
    headers = dict(request.headers.items())
    return requests.post(aws.url + "/recommendations", data=tamper or data, headers=headers, timeout=5)


def body(aws):
    return {"campaignArn": aws.arn("campaign/for-you"), "userId": "u1", "numResults": 2}


def test_a_correctly_signed_raw_request_is_answered(aws):
    r = signed_request(aws, body(aws))
    assert r.status_code == 200, r.text


def test_an_unsigned_request_is_refused(aws):
    r = requests.post(aws.url + "/recommendations", json=body(aws), timeout=5)
    assert r.status_code == 403
    assert r.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
    assert "message" in r.json()


def test_a_tampered_body_is_refused(aws):
    tampered = json.dumps({**body(aws), "userId": "u2"}).encode()
    r = signed_request(aws, body(aws), tamper=tampered)
    assert r.status_code == 403 and r.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")


def test_a_stale_signature_is_refused(aws):
    r = signed_request(aws, body(aws), when=datetime.now(UTC) - timedelta(minutes=20))
    assert r.status_code == 403 and "Signature expired" in r.json()["message"]


def test_a_signature_from_the_future_is_refused(aws):
    r = signed_request(aws, body(aws), when=datetime.now(UTC) + timedelta(minutes=20))
    assert r.status_code == 403


def test_a_slightly_skewed_clock_is_tolerated(aws):
    r = signed_request(aws, body(aws), when=datetime.now(UTC) - timedelta(minutes=3))
    assert r.status_code == 200, r.text
