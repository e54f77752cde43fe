"""One HTTP attempt: check the URL again, connect to the checked address, sign, post.

The URL's host is resolved and judged right before the request (:mod:`.urls`), and the
request connects to that address — the host name goes in the ``Host`` header and, for https,
in the TLS server name, so virtual hosting and certificate checks work as for the name. There
is no window between the check and the connection for DNS to change the answer (rebinding).
Each attempt uses a fresh client: a pooled connection opened for one name must not carry
another name's request to a shared address. Redirects are never followed, and no proxy from
the environment is used (it would connect on its own terms).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx

from pixwave.notifications.webhooks import signing, urls

USER_AGENT: Final = "PixWave-Webhooks/1"
#: Most characters of a receiver's answer kept with the attempt.
EXCERPT_CHARS: Final = 500
#: Most bytes read from a receiver's answer (the rest is never downloaded).
_READ_BYTES: Final = 4096
_ERROR_CHARS: Final = 255


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to: ``succeeded`` (2xx), ``failed`` (another status) or ``error``
    (no answer: refused address, DNS, connection, timeout)."""

    outcome: str
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "succeeded"


async def send(
    *,
    url: str,
    msg_id: str,
    body: bytes,
    keys: list[str],
    timeout_seconds: float,
    allow_private: bool,
    resolver: urls.Resolver = urls.system_resolve,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Outcome:
    """Post ``body`` once; every failure is an :class:`Outcome`, never an exception."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout_seconds):
            target = await urls.check(url, allow_private=allow_private, resolver=resolver)
            # The wall clock, not an injected one: receivers compare it with theirs.
            timestamp = datetime.now(UTC)
            headers = {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": signing.signature(keys, msg_id, timestamp, body),
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            request_url, extensions = target.url, {}
            if target.addresses:
                request_url = target.url.copy_with(host=target.addresses[0])
                headers["host"] = target.url.netloc.decode("ascii")
                if target.url.scheme == "https":
                    extensions["sni_hostname"] = target.host
            async with httpx.AsyncClient(
                timeout=timeout_seconds,
                follow_redirects=False,
                trust_env=False,
                transport=transport,
            ) as client:
                request = client.build_request(
                    "POST", request_url, content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    excerpt = await _excerpt(response)
                finally:
                    await response.aclose()
    except urls.WebhookUrlNotAllowed as refused:
        return Outcome("error", None, elapsed(), error=refused.reason[:_ERROR_CHARS])
    except TimeoutError:
        return Outcome("error", None, elapsed(), error=f"timed out after {timeout_seconds:g} s")
    except httpx.TimeoutException as exc:
        return Outcome("error", None, elapsed(), error=f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
        return Outcome("error", None, elapsed(), error=error)
    status = response.status_code
    return Outcome(
        "succeeded" if 200 <= status < 300 else "failed",
        status,
        elapsed(),
        error=None if 200 <= status < 300 else f"answered {status}",
        response_excerpt=excerpt,
    )


async def _excerpt(response: httpx.Response) -> str | None:
    """The start of the answer, as text; a large answer is not downloaded."""
    received = b""
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) >= _READ_BYTES:
            break
    if not received:
        return None
    return received[:_READ_BYTES].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
