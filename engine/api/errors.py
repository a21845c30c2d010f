"""One JSON error shape for the whole API: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from engine.errors import ShelfwiseError

log = logging.getLogger(__name__)


def error_response(code: str, message: str, status: int, details: dict | None = None):
    body = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    # The same header botocore reads, so AWS SDK clients decode our errors too.
    response.headers["x-amzn-ErrorType"] = code
    return response


def _flatten(messages: dict | list, prefix: str = "") -> list[str]:
    if isinstance(messages, list):
        return [f"{prefix}: {m}" if prefix else str(m) for m in messages if not isinstance(m, dict | list)] + [
            line for m in messages if isinstance(m, dict | list) for line in _flatten(m, prefix)
        ]
    lines: list[str] = []
    for key, value in messages.items():
        lines.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return lines


def init_app(app: Flask) -> None:
    @app.errorhandler(ShelfwiseError)
    def shelfwise_error(exc: ShelfwiseError):
        return error_response(exc.code, exc.message, exc.http_status, exc.details)

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict | list) else [exc.messages]
        return error_response("InvalidInputException", "; ".join(_flatten(messages)), 400, {"fields": exc.messages})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        codes = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLargeException"}
        return error_response(
            codes.get(exc.code or 500, exc.name.replace(" ", "")), exc.description or exc.name, exc.code or 500
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response("InternalError", "internal error; see the server log", 500)
