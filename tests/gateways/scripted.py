"""A provider's HTTP API scripted behind ``httpx.MockTransport``, for connector unit tests.

The double answers the OAuth token endpoint itself (counting the calls) and replays scripted
replies for API routes; each reply is an ``httpx.Response``, an exception to raise (a transport
failure) or a callable of the request. The last reply of a route repeats. A provider's own
double says where its token endpoint is, which scopes a token carries, and how it answers a
route nobody scripted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """The connector's clock, moved by tests instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class ScriptedApi:
    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    token_replies: list[Reply] = field(default_factory=list)
    token_requests: list[httpx.Request] = field(default_factory=list)
    expires_in: int = 3600

    #: The scopes a granted token lists.
    scope: ClassVar[str] = ""
    #: Prefix of every API path (a bank's base path); ``on`` and ``calls`` work below it.
    api_path: ClassVar[str] = ""

    def is_token_request(self, request: httpx.Request) -> bool:
        raise NotImplementedError

    def not_found(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def on(self, method: str, path: str, *replies: Reply) -> None:
        """Script ``method path`` (under :attr:`api_path`)."""
        self.routes[(method, self.api_path + path)] = list(replies)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let concurrent callers interleave, as on a real network
        if self.is_token_request(request):
            self.token_requests.append(request)
            if self.token_replies:
                return play(self._next(self.token_replies), request)
            return httpx.Response(
                200,
                json={
                    "access_token": f"token-{len(self.token_requests)}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "scope": self.scope,
                },
            )
        self.requests.append(request)
        replies = self.routes.get((request.method, request.url.path))
        if not replies:
            return self.not_found(request)
        return play(self._next(replies), request)

    @staticmethod
    def _next(replies: list[Reply]) -> Reply:
        return replies.pop(0) if len(replies) > 1 else replies[0]

    def last(self) -> httpx.Request:
        return self.requests[-1]

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path.removeprefix(self.api_path)) for r in self.requests]


def play(reply: Reply, request: httpx.Request) -> httpx.Response:
    if isinstance(reply, Exception):
        raise reply
    if isinstance(reply, httpx.Response):
        # A fresh copy each time: a scripted reply may be played more than once.
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)
    return reply(request)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)
