"""The error tree. Every failure a client can see is a `PixWaveError` with a stable `code`.

A single handler in `app.py` renders them as RFC 9457 `application/problem+json`; the code is
the contract, the message is for humans. 422 is reserved for payload validation.

The classes are also the API's documentation: an endpoint lists the ones it can raise
(``responses=problems(InsufficientFunds, ...)``, see ``kit/problems.py``) and the OpenAPI
document shows each one's ``status_code``, ``code`` and ``title`` under that operation, so the
document cannot name a code the code does not have. A few answers are not raised but produced
by a handler (a validation error, a crash); they have a class here all the same, for that reason.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PixWaveError(Exception):
    """Base of every error the API reports on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    #: Members this error adds to the problem, for the OpenAPI document's example. Read from the
    #: class itself only: a subclass with other members must not show its parent's.
    example: ClassVar[dict[str, Any]] = {}

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


def _one_invalid(location: str, message: str, type_: str) -> dict[str, Any]:
    """The ``example`` of a 422 with one invalid input."""
    return {"errors": [{"location": location, "message": message, "type": type_}]}


class ValidationFailed(PixWaveError):
    """Rendered from FastAPI's validation errors, one `errors` item per invalid input. A body
    that is not JSON at all (malformed, not UTF-8, nested too deeply, a key repeated in an
    object) is one item of type `json_invalid` at location `body`."""

    status_code = 422
    code = "validation_error"
    title = "The request body or parameters are invalid"
    example: ClassVar[dict[str, Any]] = _one_invalid(
        "body.amount", "Input should be greater than 0", "greater_than"
    )


class InvalidDocument(ValidationFailed):
    """A validation error whose only kind is a CPF/CNPJ that fails its check digits."""

    code = "invalid_document"
    title = "The CPF or CNPJ is not valid"
    example: ClassVar[dict[str, Any]] = _one_invalid(
        "body.document", "CPF check digits do not match", "invalid_document"
    )


class InvalidPixKey(ValidationFailed):
    """A validation error whose only kind is a malformed Pix key."""

    code = "invalid_pix_key"
    title = "The Pix key is not valid"
    example: ClassVar[dict[str, Any]] = _one_invalid(
        "body.pix_key", "not a valid CPF key", "invalid_pix_key"
    )


class InvalidText(ValidationFailed):
    """A validation error whose only kind is free text with control characters or
    bidirectional overrides (`kit/text.py`)."""

    code = "invalid_text"
    title = "Text may not hold control characters or bidirectional overrides"
    example: ClassVar[dict[str, Any]] = _one_invalid(
        "body.description",
        "control characters and bidirectional overrides are not allowed "
        "(found U+202E at position 0)",
        "invalid_text",
    )


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


class MethodNotAllowed(PixWaveError):
    status_code = 405
    code = "method_not_allowed"
    title = "The path does not take that method"


class Conflict(PixWaveError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class RateLimited(PixWaveError):
    """Answered by the rate limiter (`kit/ratelimit.py`) before the request runs, with
    `Retry-After` and the `RateLimit-*` headers; see docs/security.md, "Rate limiting"."""

    status_code = 429
    code = "rate_limited"
    title = "Too many requests; retry after the seconds in Retry-After"


class ServiceUnavailable(PixWaveError):
    status_code = 503
    code = "service_unavailable"
    title = "A dependency is unavailable; retry later"


class InternalError(PixWaveError):
    """Never raised on purpose: what the last-resort handler answers for a bug."""

    status_code = 500
    code = "internal_error"
    title = "Internal error"
