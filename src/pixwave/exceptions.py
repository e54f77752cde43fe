"""The error tree. Every failure a client can see is a `PixWaveError` with a stable `code`.

A single handler in `app.py` renders them as RFC 9457 `application/problem+json`; the code is
the contract, the message is for humans. 422 is reserved for payload validation.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PixWaveError(Exception):
    """Base of every error the API reports on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.title
        self.extra = extra
        super().__init__(self.message)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json body. `type` is a stable URN so clients can switch on it too."""
        body: dict[str, Any] = {
            "type": f"urn:pixwave:error:{self.code}",
            "title": self.title,
            "status": self.status_code,
            "detail": self.message,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationFailed(PixWaveError):
    status_code = 422
    code = "validation_error"
    title = "The request body or parameters are invalid"


class BadRequest(PixWaveError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class PayloadTooLarge(PixWaveError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"


class Unauthenticated(PixWaveError):
    status_code = 401
    code = "unauthenticated"
    title = "A valid bearer token is required"


class Forbidden(PixWaveError):
    status_code = 403
    code = "forbidden"
    title = "This token may not do that"


class NotFound(PixWaveError):
    status_code = 404
    code = "not_found"
    title = "No such resource"


class Conflict(PixWaveError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class ServiceUnavailable(PixWaveError):
    status_code = 503
    code = "service_unavailable"
    title = "A dependency is unavailable; retry later"
