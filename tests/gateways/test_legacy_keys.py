"""Upgrading keeps an operator's gateway settings, though their Redis keys were renamed."""

from __future__ import annotations

from redis.asyncio import Redis

from pixwave.gateways.health import RedisHealthStore, adopt_legacy_settings


async def test_settings_move_to_the_new_keys_once(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()
        await redis.hset("pixwave:health:settings:efi", mapping={"enabled": 0, "priority": 7})
        await redis.hset("pixwave:health:settings:mercadopago", mapping={"priority": 3})
        store = RedisHealthStore(redis, gateways=["mercadopago", "efi"])
        await store.set_settings("mercadopago", priority=1)  # set since the upgrade: kept

        carried = await adopt_legacy_settings(redis)

        assert sorted(carried) == ["efi", "mercadopago"]
        efi = await store.get_settings("efi")
        assert (efi.enabled, efi.priority) == (False, 7)
        assert (await store.get_settings("mercadopago")).priority == 1
        assert await redis.keys("pixwave:health:settings:*") == []
        assert await adopt_legacy_settings(redis) == []
    finally:
        await redis.flushdb()
        await redis.aclose()
