"""What can go wrong when PixWave talks to a gateway, sorted by what the caller must do next.

```
GatewayError
├── GatewayUnavailable   connect error, timeout before sending, 5xx on a safe call, 429
│                        → retry the same gateway (honour retry_after), then fall back
├── GatewayRejected      the provider said no: invalid key, insufficient balance, validation
│   └── GatewayNotFound  the resource does not exist there (a query's honest "no")
│                        → terminal, no fallback: another gateway would say no too
└── GatewayAmbiguous     the request went out and the outcome is unknown: read timeout,
                         connection reset after sending, 5xx on a call that moves money
                         → query the same gateway with the same id before anything else
```

Which transport failure or HTTP status lands where is the data in :data:`TRANSPORT_OUTCOMES`
and :func:`classify_status`; each provider adds a table of its own error codes in its
``mapping.py``. A timeout is never a failure: it is *ambiguous* whenever money could have moved.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pixwave.exceptions import PixWaveError


class Outcome(StrEnum):
    """The outcome of one gateway call, as recorded in an attempt row and in health windows."""

    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    AMBIGUOUS = "ambiguous"


class GatewayError(Exception):
    """Base of every connector failure. ``code`` is ours and stable; ``provider_code`` is theirs."""

    outcome: Outcome = Outcome.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        gateway: str,
        operation: str,
        code: str,
        http_status: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
        latency_ms: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.gateway = gateway
        self.operation = operation
        self.code = code
        self.http_status = http_status
        self.provider_code = provider_code
        self.retry_after = retry_after
        self.latency_ms = latency_ms

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(gateway={self.gateway!r}, operation={self.operation!r}, "
            f"code={self.code!r}, http_status={self.http_status!r}, "
            f"provider_code={self.provider_code!r}, message={self.message!r})"
        )


class GatewayUnavailable(GatewayError):
    """Nothing happened at the provider, or it is safe to ask again: retry, then fall back."""

    outcome = Outcome.UNAVAILABLE


class GatewayRejected(GatewayError):
    """The provider understood and refused. Terminal for this payment on every gateway."""

    outcome = Outcome.REJECTED


class GatewayNotFound(GatewayRejected):
    """The provider has no such resource (charge, send, refund)."""


class GatewayAmbiguous(GatewayError):
    """The request may have taken effect. Query the same gateway with the same id first."""

    outcome = Outcome.AMBIGUOUS


class UnsupportedOperation(GatewayError):
    """The connector lacks the capability; the router must not have sent this here."""

    outcome = Outcome.REJECTED


class TransportFailure(StrEnum):
    """How an HTTP exchange failed before a status line arrived."""

    CONNECT = "connect"  # refused, DNS, TLS handshake, connect timeout: nothing was sent
    POOL = "pool"  # no free connection in time: nothing was sent
    WRITE = "write"  # failed while sending: the provider may have the request
    READ_TIMEOUT = "read_timeout"  # sent, no answer in time
    READ = "read"  # sent, connection reset / closed before a full response


#: (failure, the call moves money or creates state) → what the caller must assume.
TRANSPORT_OUTCOMES: Final[dict[tuple[TransportFailure, bool], type[GatewayError]]] = {
    (TransportFailure.CONNECT, False): GatewayUnavailable,
    (TransportFailure.CONNECT, True): GatewayUnavailable,
    (TransportFailure.POOL, False): GatewayUnavailable,
    (TransportFailure.POOL, True): GatewayUnavailable,
    (TransportFailure.WRITE, False): GatewayUnavailable,
    (TransportFailure.WRITE, True): GatewayAmbiguous,
    (TransportFailure.READ_TIMEOUT, False): GatewayUnavailable,
    (TransportFailure.READ_TIMEOUT, True): GatewayAmbiguous,
    (TransportFailure.READ, False): GatewayUnavailable,
    (TransportFailure.READ, True): GatewayAmbiguous,
}

#: Our stable code for each transport failure.
TRANSPORT_CODES: Final[dict[TransportFailure, str]] = {
    TransportFailure.CONNECT: "connect_failed",
    TransportFailure.POOL: "connection_pool_exhausted",
    TransportFailure.WRITE: "send_interrupted",
    TransportFailure.READ_TIMEOUT: "read_timeout",
    TransportFailure.READ: "connection_lost",
}


def classify_status(status: int, *, moves_money: bool) -> tuple[type[GatewayError], str]:
    """The default class and code of an HTTP error status, before provider-specific rules.

    5xx on a call that moves money (send Pix, refund) is ambiguous — the provider may have
    acted before failing — except 503, which refuses the request outright. On anything else a
    5xx is safe to repeat with the same id.
    """
    if status == 429:
        return GatewayUnavailable, "rate_limited"
    if status in (401, 407):
        # Our credentials are wrong or expired after a refresh: this gateway cannot be used
        # until an operator acts, but another one may work.
        return GatewayUnavailable, "authentication_failed"
    if status == 403:
        return GatewayRejected, "forbidden"
    if status == 404:
        return GatewayNotFound, "not_found"
    if status == 408:
        return (GatewayAmbiguous if moves_money else GatewayUnavailable), "provider_timeout"
    if status == 409:
        return GatewayRejected, "conflict"
    if 400 <= status < 500:
        return GatewayRejected, "invalid_request"
    if status == 503 or (status in (502, 504) and not moves_money):
        # 503 says the server would not take the request at all (RFC 9110 §15.6.4); a 502 or
        # 504 from a proxy may hide an upstream that did.
        return GatewayUnavailable, "provider_unavailable"
    if status >= 500:
        return (GatewayAmbiguous if moves_money else GatewayUnavailable), "provider_error"
    raise ValueError(f"HTTP {status} is not an error status")


class WebhookRejected(PixWaveError):
    """An inbound webhook failed authentication or parsing; nothing of it was processed."""

    status_code = 401
    code = "webhook_rejected"
    title = "The webhook could not be authenticated"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason
