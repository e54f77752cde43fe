"""Revoking tokens and deactivating users: at once, in this process and in every other one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from pixwave.accounts import service
from pixwave.accounts.auth import LAST_USED_RESOLUTION, Principal, TokenCache, authenticate
from pixwave.accounts.errors import CannotDeactivateSelf, TokenNotFound
from pixwave.accounts.models import ApiToken
from pixwave.accounts.revocation import EvictionListener
from pixwave.bootstrap import build_resources
from pixwave.db import table, utcnow
from pixwave.exceptions import Unauthenticated
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from tests.factories import Actor, create_actor, create_admin


def token_of(actor: Actor) -> str:
    return actor.token


async def token_id_of(resources: Resources, actor: Actor) -> str:
    return (await authenticate(resources, token_of(actor))).token_id


async def revoke(resources: Resources, token_id: str, user_id: str | None = None) -> None:
    async with resources.sessionmaker() as session:
        await service.revoke_token(
            session, resources.token_evictions, token_id=token_id, user_id=user_id
        )
        await flush_and_commit(session)


async def set_active(resources: Resources, user_id: str, *, active: bool) -> None:
    async with resources.sessionmaker() as session:
        await service.set_active(
            session, resources.token_evictions, user_id=user_id, active=active, by_user_id="op"
        )
        await flush_and_commit(session)


class TestTokenCache:
    def test_an_eviction_during_a_lookup_keeps_its_answer_out(self) -> None:
        """A principal read before a revocation committed is not cached after it."""
        cache = TokenCache(30)
        generation = cache.generation
        cache.evict(["h"])  # the revocation lands while the lookup reads the database
        cache.put("h", Principal("tok", "usr", "user", None), generation)  # type: ignore[arg-type]
        assert cache.get("h") == (False, None)

    def test_a_quiet_lookup_is_cached(self) -> None:
        """Without an eviction meanwhile the answer is cached."""
        cache = TokenCache(30)
        cache.put("h", None, cache.generation)
        assert cache.get("h") == (True, None)


class TestRevokeInOneProcess:
    async def test_a_cached_token_stops_working_at_once(self, any_resources: Resources) -> None:
        """Revocation evicts the cached lookup: the very next request is 401."""
        actor = await create_actor(any_resources)
        token_id = await token_id_of(any_resources, actor)  # now cached for 30 s
        await revoke(any_resources, token_id, actor.user.id)
        with pytest.raises(Unauthenticated):
            await authenticate(any_resources, token_of(actor))

    async def test_revoking_twice_answers_the_same(self, any_resources: Resources) -> None:
        """A second revocation keeps the first time and succeeds (idempotent by itself)."""
        actor = await create_actor(any_resources)
        token_id = await token_id_of(any_resources, actor)
        await revoke(any_resources, token_id)
        async with any_resources.sessionmaker() as session:
            first = await service.list_tokens(session, actor.user.id, limit=10, starting_after=None)
        await revoke(any_resources, token_id)
        async with any_resources.sessionmaker() as session:
            second = await service.list_tokens(
                session, actor.user.id, limit=10, starting_after=None
            )
        assert first[0].revoked_at is not None
        assert second[0].revoked_at == first[0].revoked_at

    async def test_another_users_token_is_not_found(self, any_resources: Resources) -> None:
        """A user may revoke only their own tokens: another's id answers token_not_found."""
        ana, bia = await create_actor(any_resources), await create_actor(any_resources)
        bia_token = await token_id_of(any_resources, bia)
        with pytest.raises(TokenNotFound):
            await revoke(any_resources, bia_token, ana.user.id)
        assert (await authenticate(any_resources, token_of(bia))).user_id == bia.user.id

    async def test_other_tokens_of_the_user_keep_working(self, any_resources: Resources) -> None:
        """Revoking one token leaves the user's other tokens alone."""
        actor = await create_actor(any_resources)
        async with any_resources.sessionmaker() as session:
            second = await service.issue_token(session, user_id=actor.user.id)
            await flush_and_commit(session)
        await revoke(any_resources, await token_id_of(any_resources, actor))
        assert (await authenticate(any_resources, second.token)).user_id == actor.user.id


class TestDeactivation:
    async def test_a_deactivated_users_tokens_stop_and_return(
        self, any_resources: Resources
    ) -> None:
        """Deactivation stops every token at once; reactivation brings the unrevoked back."""
        actor = await create_actor(any_resources, balance=50_00)
        await authenticate(any_resources, token_of(actor))
        await set_active(any_resources, actor.user.id, active=False)
        with pytest.raises(Unauthenticated):
            await authenticate(any_resources, token_of(actor))
        await set_active(any_resources, actor.user.id, active=True)
        assert (await authenticate(any_resources, token_of(actor))).user_id == actor.user.id

    async def test_an_operator_cannot_deactivate_themselves(self, any_resources: Resources) -> None:
        """Deactivating one's own account is refused: it could lock every operator out."""
        admin = await create_admin(any_resources)
        async with any_resources.sessionmaker() as session:
            with pytest.raises(CannotDeactivateSelf):
                await service.set_active(
                    session,
                    any_resources.token_evictions,
                    user_id=admin.user.id,
                    active=False,
                    by_user_id=admin.user.id,
                )


class TestLastUsed:
    async def test_a_lookup_records_the_use(self, any_resources: Resources) -> None:
        """The first lookup sets last_used_at; list_tokens shows it, never the secret."""
        actor = await create_actor(any_resources)
        before = utcnow()
        await authenticate(any_resources, token_of(actor))
        async with any_resources.sessionmaker() as session:
            [token] = await service.list_tokens(
                session, actor.user.id, limit=10, starting_after=None
            )
        assert token.last_used_at is not None
        assert token.last_used_at >= before - timedelta(seconds=1)
        assert actor.token not in token.model_dump_json()

    async def test_a_recent_use_is_not_written_again(self, any_resources: Resources) -> None:
        """Within the resolution a lookup does not write: about one write a minute per token."""
        actor = await create_actor(any_resources)
        token_id = await token_id_of(any_resources, actor)
        recent = utcnow() - LAST_USED_RESOLUTION / 2
        async with any_resources.sessionmaker() as session, session.begin():
            await session.execute(
                update(table(ApiToken))
                .where(table(ApiToken).c.id == token_id)
                .values(last_used_at=recent)
            )
        any_resources.token_cache.clear()
        await authenticate(any_resources, token_of(actor))
        async with any_resources.sessionmaker() as session:
            [token] = await service.list_tokens(
                session, actor.user.id, limit=10, starting_after=None
            )
        assert token.last_used_at == recent


@pytest.fixture
async def second_process(resources: Resources) -> AsyncIterator[Resources]:
    """Another API process's view: its own token cache, Redis client and listener, on the
    same MariaDB and Redis as ``resources``."""
    other = build_resources(resources.settings)
    assert other.eviction_listener is not None
    other.eviction_listener.start()
    await asyncio.wait_for(other.eviction_listener.subscribed.wait(), 5)
    yield other
    await other.close()


class TestRevokeAcrossProcesses:
    async def test_another_process_stops_accepting_at_once(
        self, resources: Resources, second_process: Resources
    ) -> None:
        """A token cached by another process is refused there right after the revocation."""
        actor = await create_actor(resources)
        token_id = await token_id_of(second_process, actor)  # cached over there
        await revoke(resources, token_id)
        await _evicted(second_process, actor)
        with pytest.raises(Unauthenticated):
            await authenticate(second_process, token_of(actor))

    async def test_deactivation_reaches_another_process(
        self, resources: Resources, second_process: Resources
    ) -> None:
        """Deactivating a user evicts every one of their tokens in every process."""
        actor = await create_actor(resources)
        await authenticate(second_process, token_of(actor))
        await set_active(resources, actor.user.id, active=False)
        await _evicted(second_process, actor)
        with pytest.raises(Unauthenticated):
            await authenticate(second_process, token_of(actor))

    async def test_a_listener_that_reconnects_forgets_everything(
        self, resources: Resources
    ) -> None:
        """What was published while a listener was away cannot survive its resubscription."""
        cache = TokenCache(30)
        cache.put("cached-before", None)
        assert resources.redis is not None
        listener = EvictionListener(resources.redis, cache)
        listener.start()
        try:
            await asyncio.wait_for(listener.subscribed.wait(), 5)
        finally:
            await listener.stop()
        assert cache.get("cached-before") == (False, None)


async def _evicted(process: Resources, actor: Actor) -> None:
    """Wait (up to a second) until ``process`` no longer holds the actor's token: the message
    crosses Redis in milliseconds — where a cache left alone keeps it for 30 s."""
    key = service.hash_token(actor.token)
    for _ in range(100):
        if process.token_cache.get(key)[0] is False:
            return
        await asyncio.sleep(0.01)
