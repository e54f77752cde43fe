"""Idempotency-Key on every POST, Stripe-style (IETF draft-ietf-httpapi-idempotency-key).

* The first request with a key runs; its response (success or a domain error) is stored in the
  **same database transaction** as its effects, so an effect without a stored response, or a
  stored response without its effect, cannot exist. There is no lookup first: the record's
  primary key refuses a second insert, the attempt rolls back, and the stored response is
  replayed — a first request costs no extra round trip, a replay costs a rolled-back attempt.
* A replay with the same key and the same body gets the stored response and
  `Idempotent-Replayed: true`; a different body gets 422 `idempotency_key_reused`.
* A replay while the first is still running gets 409 `idempotency_key_in_use`: a short lock in
  Redis (in memory for the embedded default) marks the key as taken. It is released when the
  request fails and left to expire when it succeeds; whoever finds it held looks for the stored
  record and replays it, or is told the first request is still running. If the lock ever lapses,
  the record's primary key still lets only one execution commit; the loser rolls back and
  replays the winner.
* Keys are scoped to the caller and kept `IDEMPOTENCY_TTL_SECONDS` (24 h).
* A request may run in a group commit instead of a transaction of its own (`grouped`; see
  `kit.groupcommit`): the same rules hold there — its answer or refusal is stored with its
  effect, a key already answered is replayed — and whatever the group cannot decide runs here,
  alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import orjson
import structlog
from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pixwave.accounts.auth import CurrentPrincipal, Principal
from pixwave.db import table, utcnow
from pixwave.exceptions import (
    BadRequest,
    Conflict,
    PixWaveError,
    ServiceUnavailable,
    ValidationFailed,
)
from pixwave.kit.groupcommit import GroupCommit, GroupedWork, KeyTaken, NotGrouped
from pixwave.kit.locks import LockManager
from pixwave.kit.models import IdempotencyRecord
from pixwave.unit_of_work import defer, flush_and_commit

RECORDS = table(IdempotencyRecord)
log = structlog.get_logger("pixwave.idempotency")
R = RECORDS.c
REPLAYED_HEADER = "Idempotent-Replayed"
PROBLEM_JSON = "application/problem+json"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class IdempotencyKeyMissing(BadRequest):
    code = "idempotency_key_missing"
    title = "POST requests need an Idempotency-Key header"


class IdempotencyKeyInvalid(BadRequest):
    code = "idempotency_key_invalid"
    title = "Idempotency-Key must be 1–255 printable ASCII characters"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    title = "A request with this Idempotency-Key is still being processed"


Work = Callable[[AsyncSession], Awaitable[BaseModel]]
Redact = Callable[[BaseModel], BaseModel]


@dataclass(frozen=True, slots=True)
class Grouped:
    """How a request may run inside a group commit instead (see `kit.groupcommit`): the same
    work against the group's locked state, and its claim (what the group must lock for it)."""

    commit: GroupCommit[Any]
    work: GroupedWork[Any]
    claim: Any


class Idempotency:
    """Runs keyed mutations exactly once per (caller, key)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        locks: LockManager,
        *,
        ttl_seconds: int,
        lock_seconds: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.locks = locks
        self.ttl = timedelta(seconds=ttl_seconds)
        self.lock_seconds = lock_seconds

    async def run(
        self,
        *,
        scope: str,
        key: str,
        method: str,
        path: str,
        payload: BaseModel,
        status_code: int,
        work: Work,
        redact: Redact | None = None,
        grouped: Grouped | None = None,
    ) -> Response:
        """Run `work` once per (scope, key). `redact` shapes what is *stored* for replays
        (a secret shown once must not sit in the idempotency table). With `grouped`, the work
        runs in a group commit when it can, on its own when it cannot."""
        request_hash = _fingerprint(method, path, payload)
        lock_name = f"idem:{scope}:{key}"
        try:
            token = await self.locks.acquire(lock_name, self.lock_seconds)
        except RedisError as exc:
            raise ServiceUnavailable("the lock store (Redis) is unavailable; retry later") from exc
        if token is None:
            # Held: a twin is still running, or it finished and its lock is left to expire.
            replay = await self._replay_existing(scope, key, request_hash)
            if replay is not None:
                return replay
            raise IdempotencyKeyInUse("retry after the first request with this key has finished")
        try:
            return await self._run_locked(
                scope=scope,
                key=key,
                method=method,
                path=path,
                request_hash=request_hash,
                status_code=status_code,
                work=work,
                redact=redact,
                grouped=grouped,
            )
        except BaseException:
            # Whatever was stored, a retry must not wait for the lock to expire.
            await self._release(lock_name, token)
            raise
        # On success the lock is not released (a round trip saved): the record now answers
        # anyone who finds the lock held, and the lock expires on its own.

    async def _release(self, lock_name: str, token: str) -> None:
        try:
            await self.locks.release(lock_name, token)
        except RedisError as exc:  # the lock expires on its own
            log.warning("idempotency.lock_release_failed", key=lock_name, error=repr(exc))

    async def _run_locked(
        self,
        *,
        scope: str,
        key: str,
        method: str,
        path: str,
        request_hash: str,
        status_code: int,
        work: Work,
        redact: Redact | None,
        grouped: Grouped | None,
    ) -> Response:
        record = {
            "scope": scope,
            "key": key,
            "request_method": method,
            "request_path": path[:255],
            "request_hash": request_hash,
        }
        # Optimistic: run the work and insert the record in the same transaction; a key that
        # already exists makes that insert fail, the whole attempt rolls back, and the stored
        # response is replayed. A first request (the common case) needs no lookup round trip.
        for _attempt in range(2):
            try:
                if grouped is not None and redact is None:
                    with contextlib.suppress(NotGrouped):
                        return await grouped.commit.submit(
                            record, status_code, grouped.work, grouped.claim
                        )
                return await self._attempt(record, status_code, work, redact)
            except (IntegrityError, KeyTaken):
                replay = await self._replay_existing(scope, key, request_hash)
                if replay is not None:
                    return replay
                # An expired record held the key; it is gone now: run again.
        raise ServiceUnavailable("the idempotency key is contended; retry")

    async def _attempt(
        self, record: dict[str, Any], status_code: int, work: Work, redact: Redact | None
    ) -> Response:
        """Run the work and store its outcome; IntegrityError means the key already has one."""
        async with self.sessionmaker() as session:
            try:
                result = await work(session)
                body = _json(result)
                kept = _json(redact(result)) if redact is not None else body
                self.store(session, record, status_code, kept)
                # A guarded debit that misses is the operation's refusal (raised before COMMIT
                # is sent) and must be told apart from a failure to commit.
                await flush_and_commit(session)
            except PixWaveError as refusal:
                if refusal.status_code >= 500:
                    raise  # transient: a retry should run again
                refused = refusal
            else:
                return Response(body, status_code=status_code, media_type="application/json")
        # A refusal (insufficient funds, unknown wallet) is an outcome too: stored for replay in a
        # transaction of its own, since the work's was rolled back with the session.
        async with self.sessionmaker() as session, session.begin():
            self.store(session, record, refused.status_code, orjson.dumps(refused.problem()))
        raise refused

    def store(
        self, session: AsyncSession, record: dict[str, Any], status: int, body: bytes
    ) -> None:
        """Queue a key's answer with the unit of work's other writes; it commits with them."""
        _store(session, record, status, body, self.ttl)

    async def _replay_existing(self, scope: str, key: str, request_hash: str) -> Response | None:
        """The stored response for the key, or None after removing an expired record."""
        async with self.sessionmaker() as session, session.begin():
            stored = await _load(session, scope, key)
        if stored is None:
            return None
        return _replay(stored, request_hash)

    async def purge_expired(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(delete(RECORDS).where(R.expires_at < utcnow()))
            return int(result.rowcount)  # type: ignore[attr-defined]


def _json(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def _fingerprint(method: str, path: str, payload: BaseModel) -> str:
    """Hash of the *parsed* body, so key order and whitespace do not count as a change."""
    canonical = orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


_LOOKUP = select(R.request_hash, R.response_status, R.response_body, R.expires_at).where(
    R.scope == bindparam("scope"), R.key == bindparam("key")
)
_FORGET = delete(RECORDS).where(R.scope == bindparam("scope"), R.key == bindparam("key"))


async def _load(session: AsyncSession, scope: str, key: str) -> dict[str, Any] | None:
    params = {"scope": scope, "key": key}
    row = (await session.execute(_LOOKUP, params)).one_or_none()
    if row is None:
        return None
    if row.expires_at < utcnow():
        await session.execute(_FORGET, params)
        return None
    return dict(row._mapping)


_INSERT = insert(RECORDS)


def _store(
    session: AsyncSession, record: dict[str, Any], status: int, body: bytes, ttl: timedelta
) -> None:
    """Queue the record with the unit of work's other writes; it commits with them."""
    now = utcnow()
    defer(
        session,
        _INSERT,
        {**record, "response_status": status, "response_body": body, "created_at": now,
         "expires_at": now + ttl},
    )  # fmt: skip


def _replay(stored: dict[str, Any], request_hash: str) -> Response:
    if stored["request_hash"] != request_hash:
        raise IdempotencyKeyReused(
            "the first request with this key had a different method, path or body"
        )
    status = int(stored["response_status"])
    return Response(
        bytes(stored["response_body"]),
        status_code=status,
        media_type="application/json" if status < 400 else PROBLEM_JSON,
        headers={REPLAYED_HEADER: "true"},
    )


class IdempotentRequest:
    """What an endpoint needs to run its service call under the caller's key."""

    def __init__(self, request: Request, principal: Principal, key: str) -> None:
        self.request = request
        self.principal = principal
        self.key = key

    async def run(
        self,
        payload: BaseModel,
        work: Work,
        *,
        status_code: int = 201,
        redact: Redact | None = None,
        grouped: Grouped | None = None,
    ) -> Response:
        idempotency: Idempotency = self.request.app.state.resources.idempotency
        return await idempotency.run(
            scope=self.principal.user_id,
            key=self.key,
            method=self.request.method,
            path=self.request.url.path,
            payload=payload,
            status_code=status_code,
            work=work,
            redact=redact,
            grouped=grouped,
        )


#: Every answer the mechanism itself can give, for the OpenAPI document (see `kit/problems.py`).
IDEMPOTENCY_ERRORS: tuple[type[PixWaveError], ...] = (
    IdempotencyKeyMissing,
    IdempotencyKeyInvalid,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    ServiceUnavailable,  # the lock store (Redis) is down, or the key stays contended
)

#: The header as the OpenAPI document states it: required. The dependency below reads it as
#: optional so that a missing key answers 400 `idempotency_key_missing`, not FastAPI's 422.
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "A unique value (a UUID) per intended operation, kept 24 h. Retrying with "
    "the same key and body replays the first answer (`Idempotent-Replayed: true`) and never "
    "repeats the effect; the same key with another body is 422 `idempotency_key_reused`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": _KEY.pattern},
    "example": "5f0c8a3e-4a61-4d5e-9a43-0d1c2b3a4f5e",
}

#: Documented on the success response of every idempotent operation.
REPLAYED_HEADER_DOC: dict[str, Any] = {
    "description": "`true` when this is the stored answer to an earlier request with the key.",
    "schema": {"type": "string", "enum": ["true"]},
}


async def idempotent_request(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> IdempotentRequest:
    if idempotency_key is None:
        raise IdempotencyKeyMissing("send an `Idempotency-Key` header (a UUID works)")
    if not _KEY.match(idempotency_key):
        raise IdempotencyKeyInvalid()
    return IdempotentRequest(request, principal, idempotency_key)


Idempotent = Annotated[IdempotentRequest, Depends(idempotent_request)]
