"""What the Personalize-compatible blueprints share: SigV4 authentication, the AWS error shape,
ARN resolution, and JSON bodies as botocore sends them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import ValidationError

from engine.api.app import get_store
from engine.api.errors import _flatten
from engine.arns import resource_name
from engine.config import Settings
from engine.crypto import master_cipher
from engine.errors import InvalidInput, ShelfwiseError
from engine.expiring import Expiring
from engine.storage import Store
from engine.storage.access_keys import AccessKeyPair, lookup_access_key

from . import sigv4

log = logging.getLogger(__name__)


def aws_error(code: str, message: str, status: int) -> Response:
    """botocore's rest-json parser reads the code from this header and the message from the body."""
    response = jsonify({"message": message})
    response.status_code = status
    response.headers["x-amzn-ErrorType"] = f"{code}:"
    return response


def settings() -> Settings:
    return current_app.config["SHELFWISE"]


def install_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(ShelfwiseError)
    def shelfwise_error(exc: ShelfwiseError) -> Response:
        code = "UnrecognizedClientException" if exc.http_status == 401 else exc.code
        return aws_error(code, exc.message, 403 if exc.http_status == 401 else exc.http_status)

    @bp.errorhandler(ValidationError)
    def validation_error(exc: ValidationError) -> Response:
        messages = exc.messages if isinstance(exc.messages, dict | list) else [exc.messages]
        return aws_error("InvalidInputException", "; ".join(_flatten(messages)), 400)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return aws_error("InternalFailure", "internal error; see the server log", 500)


_ACCESS_KEYS = "shelfwise.access_keys"


def _access_key(config: Settings, access_key_id: str) -> AccessKeyPair:
    """The caller's key pair, read and decrypted at most once a second per key and process, as API
    keys are (a revoked key stops working within ``Store.KEY_CACHE_SECONDS``): a query, a read of
    the master key file and a decryption on every signed request cost more than checking the
    signature itself. Unknown or revoked keys raise and are not cached."""
    cache = current_app.extensions.get(_ACCESS_KEYS)
    if cache is None:
        cache = current_app.extensions.setdefault(_ACCESS_KEYS, Expiring(Store.KEY_CACHE_SECONDS, max_entries=1000))
    return cache.get(access_key_id, lambda: lookup_access_key(get_store(), access_key_id, master_cipher(config)))


def signed(view: Callable) -> Callable:
    """Verify the request's SigV4 signature against the caller's access key; the key's dataset
    group becomes the tenant (``g.dataset_group``)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        config = settings()
        parsed = sigv4.parse_authorization(request.headers)
        sigv4.check_clock(parsed, config.max_clock_skew_seconds)
        key = _access_key(config, parsed.access_key_id)
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        query = request.query_string.decode()
        url = f"{scheme}://{request.host}{request.path}" + (f"?{query}" if query else "")
        sigv4.verify(
            parsed,
            key.secret_access_key,
            method=request.method,
            url=url,
            headers=request.headers,
            body=request.get_data(cache=True),
        )
        g.dataset_group = key.dataset_group
        return view(*args, **kwargs)

    return wrapped


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object")
    return body


def name_from_arn(arn: str, kind: str) -> str:
    return resource_name(settings(), arn, kind)
