"""Who owns a payment right now, and the "look again" note for its owner.

One worker at a time moves a payment (the lease: a lock with a TTL, renewed before each gateway
call). Whoever finds it taken — a webhook's job while a poll is running, say — leaves a note
instead of waiting; the owner reads the note as it lets go and takes one more look, so news
that lands mid-step is acted on at once, not at the next poll.

Taking the lease and leaving the note are one Redis round trip, and so are letting go and
reading the note: a step costs two, and no note can fall between "let go" and "read".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from redis.asyncio import Redis

from pixwave.kit.locks import LockManager, MemoryLocks, RedisLocks
from pixwave.kit.scripts import Call, run_scripts

# KEYS: lease, note. ARGV: token, ttl ms, note (1/0). Returns 1 when the lease was taken.
_ENTER = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
if ARGV[3] == '1' then redis.call('SET', KEYS[2], 1, 'PX', ARGV[2]) end
return 0
"""

# KEYS: lease, note. ARGV: token. Returns 1 when a note was waiting (look again).
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('DEL', KEYS[2])
"""


class Leases(Protocol):
    async def enter(self, transaction_id: str, ttl_seconds: float, *, note: bool) -> str | None:
        """A token if the payment was free (any note is cleared: this run will see the news);
        None if another run owns it — then, with ``note``, it is told to look again."""

    async def extend(self, transaction_id: str, token: str, ttl_seconds: float) -> bool:
        """Push the expiry to now + ttl while ``token`` owns it; False once it was lost."""

    async def leave(self, transaction_id: str, token: str) -> bool:
        """Let go; True when a note arrived meanwhile (the caller should look again)."""

    async def enter_many(
        self, transaction_ids: Sequence[str], ttl_seconds: float, *, note: bool
    ) -> list[str | None]:
        """:meth:`enter` for each, in one round trip (a batch of the engine)."""

    async def leave_many(self, held: Sequence[tuple[str, str]]) -> list[bool]:
        """:meth:`leave` for each (transaction id, token), in one round trip."""


def lease_name(transaction_id: str) -> str:
    # The hash tag puts the lease and its note (see ``RedisLeases._keys``) in one Redis Cluster
    # slot: the scripts below touch both.
    return f"txn:{{{transaction_id}}}"


class RedisLeases:
    """Shared by every API and worker process; the lease is a :class:`RedisLocks` lock."""

    def __init__(self, redis: Redis, locks: RedisLocks, note_prefix: str = "pixwave:poke:") -> None:
        self.redis = redis
        self.locks = locks
        self.note_prefix = note_prefix
        self._enter = redis.register_script(_ENTER)
        self._leave = redis.register_script(_LEAVE)

    def _keys(self, transaction_id: str) -> list[str]:
        return [
            self.locks.prefix + lease_name(transaction_id),
            f"{self.note_prefix}{{{transaction_id}}}",
        ]

    async def enter(self, transaction_id: str, ttl_seconds: float, *, note: bool) -> str | None:
        token = secrets.token_hex(8)
        taken = await self._enter(
            keys=self._keys(transaction_id),
            args=[token, max(1, int(ttl_seconds * 1000)), 1 if note else 0],
        )
        return token if int(taken) else None

    async def extend(self, transaction_id: str, token: str, ttl_seconds: float) -> bool:
        return await self.locks.extend(lease_name(transaction_id), token, ttl_seconds)

    async def leave(self, transaction_id: str, token: str) -> bool:
        return bool(int(await self._leave(keys=self._keys(transaction_id), args=[token])))

    async def enter_many(
        self, transaction_ids: Sequence[str], ttl_seconds: float, *, note: bool
    ) -> list[str | None]:
        tokens = [secrets.token_hex(8) for _ in transaction_ids]
        ttl = max(1, int(ttl_seconds * 1000))
        taken = await run_scripts(
            self.redis,
            [
                Call(self._enter, self._keys(transaction_id), [token, ttl, 1 if note else 0])
                for transaction_id, token in zip(transaction_ids, tokens, strict=True)
            ],
        )
        return [token if int(t) else None for token, t in zip(tokens, taken, strict=True)]

    async def leave_many(self, held: Sequence[tuple[str, str]]) -> list[bool]:
        noted = await run_scripts(
            self.redis,
            [Call(self._leave, self._keys(txn), [token]) for txn, token in held],
        )
        return [bool(int(n)) for n in noted]


class MemoryLeases:
    """The embedded default's twin (one process is the whole deployment), on an injected
    monotonic clock (seconds): a wall-clock step never ends or stretches a lease, and tests
    move time instead of sleeping through a TTL."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        #: Transaction id → (token, expiry on ``now``'s clock).
        self._held: dict[str, tuple[str, float]] = {}
        self._notes: set[str] = set()

    def _owner(self, transaction_id: str) -> str | None:
        held = self._held.get(transaction_id)
        return held[0] if held is not None and held[1] > self.now() else None

    async def enter(self, transaction_id: str, ttl_seconds: float, *, note: bool) -> str | None:
        if self._owner(transaction_id) is not None:
            if note:
                self._notes.add(transaction_id)
            return None
        token = secrets.token_hex(8)
        self._held[transaction_id] = (token, self.now() + ttl_seconds)
        self._notes.discard(transaction_id)
        return token

    async def extend(self, transaction_id: str, token: str, ttl_seconds: float) -> bool:
        if self._owner(transaction_id) != token:
            return False
        self._held[transaction_id] = (token, self.now() + ttl_seconds)
        return True

    async def leave(self, transaction_id: str, token: str) -> bool:
        held = self._held.get(transaction_id)
        if held is not None and held[0] == token:
            del self._held[transaction_id]
        if transaction_id in self._notes:
            self._notes.discard(transaction_id)
            return True
        return False

    async def enter_many(
        self, transaction_ids: Sequence[str], ttl_seconds: float, *, note: bool
    ) -> list[str | None]:
        return [await self.enter(i, ttl_seconds, note=note) for i in transaction_ids]

    async def leave_many(self, held: Sequence[tuple[str, str]]) -> list[bool]:
        return [await self.leave(i, token) for i, token in held]


def build_leases(
    locks: LockManager, redis: Redis | None, now: Callable[[], float] = time.monotonic
) -> Leases:
    """Redis leases beside Redis locks (every process shares them), else in-process ones."""
    if isinstance(locks, RedisLocks) and redis is not None:
        return RedisLeases(redis, locks)
    if not isinstance(locks, MemoryLocks):
        raise TypeError(f"no payment leases for {type(locks).__name__}")
    return MemoryLeases(now)
