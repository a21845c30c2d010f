"""One exception hierarchy for the whole engine.

The HTTP layer turns these into one JSON error shape and the CLI into a one-line message and a
non-zero exit, so code below those layers raises and never formats answers itself.
"""

from __future__ import annotations

from typing import Any


class ShelfwiseError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "InternalError"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(ShelfwiseError):
    code = "InvalidInputException"
    http_status = 400


class NotFound(ShelfwiseError):
    code = "ResourceNotFoundException"
    http_status = 404


class AlreadyExists(ShelfwiseError):
    code = "ResourceAlreadyExistsException"
    http_status = 409


class Unauthorized(ShelfwiseError):
    code = "UnauthorizedException"
    http_status = 401


class Forbidden(ShelfwiseError):
    code = "AccessDeniedException"
    http_status = 403


class PayloadTooLarge(ShelfwiseError):
    code = "PayloadTooLargeException"
    http_status = 413
