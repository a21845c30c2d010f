"""AWS Signature Version 4 verification for incoming requests.

The expected signature is computed by botocore's own signer over the request as received (its
signed headers, raw body and ``X-Amz-Date``), so client and server can never disagree on the
canonical form. Compared in constant time; stale or future-dated requests are refused.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from engine.errors import ShelfwiseError

SERVICE = "personalize"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<headers>[a-z0-9\-;]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


class SignatureError(ShelfwiseError):
    code = "InvalidSignatureException"
    http_status = 403


class MissingAuthentication(ShelfwiseError):
    code = "MissingAuthenticationTokenException"
    http_status = 403


@dataclass(frozen=True)
class SignedRequest:
    access_key_id: str
    region: str
    timestamp: str  # X-Amz-Date, e.g. 20260101T120000Z
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(headers) -> SignedRequest:
    header = headers.get("Authorization")
    if not header:
        raise MissingAuthentication("Missing Authentication Token: sign requests with AWS Signature Version 4")
    match = _AUTH.match(header.strip())
    if not match:
        raise SignatureError("The Authorization header is not an AWS4-HMAC-SHA256 signature")
    if match["service"] != SERVICE:
        raise SignatureError(f"Credential should be scoped to correct service: '{SERVICE}'")
    timestamp = headers.get("X-Amz-Date", "")
    if not re.fullmatch(r"\d{8}T\d{6}Z", timestamp) or not timestamp.startswith(match["date"]):
        raise SignatureError("X-Amz-Date is missing or does not match the credential's date")
    signed = tuple(match["headers"].split(";"))
    if "host" not in signed:
        raise SignatureError("The host header must be signed")
    return SignedRequest(match["key"], match["region"], timestamp, signed, match["signature"])


def check_clock(signed: SignedRequest, max_skew_seconds: int, now: datetime | None = None) -> None:
    sent = datetime.strptime(signed.timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    skew = abs(((now or datetime.now(UTC)) - sent).total_seconds())
    if skew > max_skew_seconds:
        raise SignatureError(
            f"Signature expired: {signed.timestamp} is more than {max_skew_seconds} seconds from the server's time"
        )


def verify(signed: SignedRequest, secret_key: str, *, method: str, url: str, headers, body: bytes) -> None:
    """Raise SignatureError unless ``signed.signature`` is the signature of this request."""
    request = AWSRequest(
        method=method,
        url=url,
        headers={name: headers.get(name, "") for name in signed.signed_headers},
        data=body,
    )
    request.context["timestamp"] = signed.timestamp
    auth = SigV4Auth(Credentials(signed.access_key_id, secret_key), SERVICE, signed.region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
