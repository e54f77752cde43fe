"""Gateway health windows, the circuit breaker and operator settings, on both stores.

Every scenario runs on the Redis store (real Redis, its own key prefix) and on the in-memory
twin, with the same fake clock, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from pixwave.gateways.errors import Outcome
from pixwave.gateways.health import (
    CIRCUIT_TTL_MS,
    CircuitState,
    GatewaySettings,
    HealthConfig,
    HealthState,
    HealthStore,
    MemoryHealthStore,
    RedisHealthStore,
    Sample,
    build_health_store,
    p95,
)
from tests.conftest import REDIS_URL
from tests.gateways.support import GATEWAYS, T0, Backend, at


@pytest.fixture
def store(backend: Backend) -> HealthStore:
    return backend.store()


async def outcomes(
    store: HealthStore,
    outcome: Outcome,
    times: int,
    *,
    gateway: str = "mercadopago",
    operation: str = "send",
    latency_ms: int = 100,
) -> None:
    for _ in range(times):
        await store.record(gateway, operation, outcome, latency_ms)


async def trip(store: HealthStore, gateway: str = "mercadopago", operation: str = "send") -> None:
    """Open the circuit with the default threshold (5 failures, nothing else in the window)."""
    await outcomes(store, Outcome.UNAVAILABLE, 5, gateway=gateway, operation=operation)


class TestWindow:
    async def test_empty_window(self, store: HealthStore) -> None:
        """With no calls there is no rate and no latency, and the circuit is closed."""
        health = await store.snapshot("mercadopago", "send")
        assert health.samples == 0
        assert health.success_rate is None
        assert health.p95_latency_ms is None
        assert health.circuit is CircuitState.CLOSED
        assert health.open_until is None

    async def test_rejections_count_as_up(self, store: HealthStore) -> None:
        """Succeeded and rejected are successes; unavailable and ambiguous are failures."""
        await outcomes(store, Outcome.SUCCEEDED, 5)
        await outcomes(store, Outcome.REJECTED, 3)
        await outcomes(store, Outcome.UNAVAILABLE, 1)
        await outcomes(store, Outcome.AMBIGUOUS, 1)
        health = await store.snapshot("mercadopago", "send")
        assert health.samples == 10
        assert health.success_rate == pytest.approx(0.8)

    async def test_pairs_are_separate(self, store: HealthStore) -> None:
        """Each (gateway, operation) has its own window."""
        await outcomes(store, Outcome.SUCCEEDED, 3, gateway="mercadopago", operation="send")
        await outcomes(store, Outcome.SUCCEEDED, 1, gateway="mercadopago", operation="charge")
        assert (await store.snapshot("mercadopago", "send")).samples == 3
        assert (await store.snapshot("mercadopago", "charge")).samples == 1
        assert (await store.snapshot("efi", "send")).samples == 0

    async def test_old_outcomes_slide_out(self, backend: Backend, store: HealthStore) -> None:
        """An outcome counts for one window (60 s), then drops out."""
        await outcomes(store, Outcome.UNAVAILABLE, 3)
        backend.clock.advance(30)
        await outcomes(store, Outcome.SUCCEEDED, 1)
        assert (await store.snapshot("mercadopago", "send")).samples == 4
        backend.clock.advance(35)  # the first three are now 65 s old
        health = await store.snapshot("mercadopago", "send")
        assert (health.samples, health.success_rate) == (1, 1.0)
        backend.clock.advance(30)
        assert (await store.snapshot("mercadopago", "send")).samples == 0


class TestLatency:
    async def test_p95_is_nearest_rank(self, backend: Backend) -> None:
        """The p95 of 1 … 100 ms is 95 ms, whatever order they came in."""
        store = backend.store(HealthConfig(latency_samples=100))
        for latency in [*range(100, 50, -1), *range(1, 51)]:
            await store.record("efi", "query", Outcome.SUCCEEDED, latency)
        assert (await store.snapshot("efi", "query")).p95_latency_ms == 95

    async def test_p95_of_one_sample(self, store: HealthStore) -> None:
        """A single call's latency is the p95."""
        await store.record("efi", "query", Outcome.SUCCEEDED, 250)
        assert (await store.snapshot("efi", "query")).p95_latency_ms == 250

    async def test_latencies_kept_are_bounded(self, backend: Backend) -> None:
        """Only the newest latencies of a bucket are kept; counts stay exact."""
        store = backend.store(HealthConfig(latency_samples=5))
        await outcomes(store, Outcome.SUCCEEDED, 10, latency_ms=1_000)
        await outcomes(store, Outcome.SUCCEEDED, 5, latency_ms=20)
        health = await store.snapshot("mercadopago", "send")
        assert (health.samples, health.p95_latency_ms) == (15, 20)

    async def test_p95_spans_buckets(self, backend: Backend, store: HealthStore) -> None:
        """The p95 is taken over the whole window, not the newest bucket."""
        await outcomes(store, Outcome.SUCCEEDED, 1, latency_ms=900)
        backend.clock.advance(20)
        await outcomes(store, Outcome.SUCCEEDED, 18, latency_ms=50)
        assert (await store.snapshot("mercadopago", "send")).p95_latency_ms == 900

    def test_p95_helper(self) -> None:
        """No latencies, no percentile; the rank is rounded up."""
        assert p95([]) is None
        assert p95([7, 3]) == 7
        assert p95(list(range(1, 21))) == 19
        assert p95(list(range(1, 22))) == 20


class TestOpening:
    async def test_opens_at_the_failure_threshold(self, store: HealthStore) -> None:
        """Four failures leave it closed; the fifth opens it for open_seconds."""
        await outcomes(store, Outcome.UNAVAILABLE, 4)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED
        assert await store.allow("mercadopago", "send")
        await outcomes(store, Outcome.UNAVAILABLE, 1)
        health = await store.snapshot("mercadopago", "send")
        assert health.circuit is CircuitState.OPEN
        assert health.open_until == at(T0 + 10)
        assert not await store.allow("mercadopago", "send")

    async def test_samples_recorded_together_count_like_one_by_one(
        self, store: HealthStore
    ) -> None:
        """A batch's reads are recorded in one round trip (`record_many`): four failures and
        a success leave it closed, the fifth failure in the next batch opens it, and the
        samples of another operation count for theirs only."""
        first = [Sample("mercadopago", "send", Outcome.UNAVAILABLE, 100)] * 4
        other = [Sample("mercadopago", "query", Outcome.UNAVAILABLE, 100)] * 3
        await store.record_many([*first, *other])
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED
        await store.record_many([Sample("mercadopago", "send", Outcome.UNAVAILABLE, 100)])
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.OPEN
        assert (await store.snapshot("mercadopago", "query")).circuit is CircuitState.CLOSED
        await store.record_many([])

    @pytest.mark.parametrize(
        ("successes", "failures"), [(6, 5), (100, 9)], ids=["rate", "in-a-row"]
    )
    async def test_the_next_failure_opens(
        self, store: HealthStore, successes: int, failures: int
    ) -> None:
        """rate: 5 failures among 11 calls (45 %) stay closed; the 6th failure (50 %) opens.
        in-a-row: after 100 successes, 9 failures (8 %) stay closed; the 10th in a row opens —
        a dead gateway must not wait for its failures to outnumber a minute of successes."""
        await outcomes(store, Outcome.SUCCEEDED, successes)
        await outcomes(store, Outcome.UNAVAILABLE, failures)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED
        await outcomes(store, Outcome.AMBIGUOUS, 1)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.OPEN

    async def test_a_success_restarts_the_count(self, store: HealthStore) -> None:
        """Nine failures, one success, nine failures: never ten in a row, still closed."""
        await outcomes(store, Outcome.SUCCEEDED, 100)
        await outcomes(store, Outcome.UNAVAILABLE, 9)
        await outcomes(store, Outcome.REJECTED, 1)  # an answer: the gateway is up
        await outcomes(store, Outcome.UNAVAILABLE, 9)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED

    async def test_a_streak_does_not_outlive_the_window(self, backend: Backend) -> None:
        """Failures more than a window apart are not "in a row" (the rate rule is set out of
        reach here, so only the streak could open the circuit)."""
        store = backend.store(HealthConfig(failure_threshold=1_000))
        await outcomes(store, Outcome.UNAVAILABLE, 9)
        backend.clock.advance(70)
        await outcomes(store, Outcome.UNAVAILABLE, 9)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED
        await outcomes(store, Outcome.UNAVAILABLE, 1)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.OPEN

    async def test_zero_turns_the_streak_rule_off(self, backend: Backend) -> None:
        store = backend.store(HealthConfig(consecutive_failures=0))
        await outcomes(store, Outcome.SUCCEEDED, 100)
        await outcomes(store, Outcome.UNAVAILABLE, 30)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED

    async def test_rejections_never_open(self, store: HealthStore) -> None:
        """A gateway that says no to everything is up: the circuit stays closed."""
        await outcomes(store, Outcome.REJECTED, 20)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED

    async def test_failures_outside_the_window_do_not_add_up(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """Four failures, a minute of calm, one more failure: still closed."""
        await outcomes(store, Outcome.UNAVAILABLE, 4)
        backend.clock.advance(61)
        await outcomes(store, Outcome.UNAVAILABLE, 1)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.CLOSED

    async def test_configured_threshold_and_cooldown(self, backend: Backend) -> None:
        """failure_threshold and open_seconds come from the configuration."""
        store = backend.store(HealthConfig(failure_threshold=2, open_seconds=3))
        await outcomes(store, Outcome.UNAVAILABLE, 2)
        assert (await store.snapshot("mercadopago", "send")).open_until == at(T0 + 3)

    async def test_only_the_failing_pair_opens(self, store: HealthStore) -> None:
        """An open send circuit leaves the gateway's other operations and other gateways alone."""
        await trip(store)
        assert not await store.allow("mercadopago", "send")
        assert await store.allow("mercadopago", "charge")
        assert await store.allow("efi", "send")

    async def test_opening_is_logged(self, store: HealthStore) -> None:
        """Opening writes one gateway.circuit_opened line with the pair and the counts."""
        with capture_logs() as logs:
            await trip(store)
        opened = [e for e in logs if e["event"] == "gateway.circuit_opened"]
        assert len(opened) == 1
        assert opened[0]["gateway"] == "mercadopago"
        assert opened[0]["operation"] == "send"
        assert opened[0]["failures"] == 5


class TestHalfOpen:
    async def test_stays_open_during_cooldown(self, backend: Backend, store: HealthStore) -> None:
        """Until open_seconds have passed nobody may call."""
        await trip(store)
        backend.clock.advance(9.9)
        assert (await store.snapshot("mercadopago", "send")).circuit is CircuitState.OPEN
        assert not await store.allow("mercadopago", "send")

    async def test_half_open_after_cooldown(self, backend: Backend, store: HealthStore) -> None:
        """After the cooldown the snapshot says half_open, and reading it takes no probe."""
        await trip(store)
        backend.clock.advance(10)
        for _ in range(3):
            health = await store.snapshot("mercadopago", "send")
            assert health.circuit is CircuitState.HALF_OPEN
            assert health.open_until == at(T0 + 10)
        assert await store.allow("mercadopago", "send")

    async def test_exactly_one_probe_among_concurrent_callers(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """20 concurrent callers, from two connections: exactly one wins the probe."""
        other = backend.peer(store)
        await trip(store)
        backend.clock.advance(10)
        answers = await asyncio.gather(
            *((store if i % 2 else other).allow("mercadopago", "send") for i in range(20))
        )
        assert answers.count(True) == 1

    async def test_probe_success_closes_and_resets(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """The probe's success closes the circuit and starts a fresh window."""
        await trip(store)
        backend.clock.advance(10)
        assert await store.allow("mercadopago", "send")
        with capture_logs() as logs:
            await store.record("mercadopago", "send", Outcome.SUCCEEDED, 80)
        health = await store.snapshot("mercadopago", "send")
        assert health.circuit is CircuitState.CLOSED
        assert health.open_until is None
        assert (health.samples, health.success_rate) == (1, 1.0)
        assert all([await store.allow("mercadopago", "send") for _ in range(3)])
        assert [e["event"] for e in logs] == ["gateway.circuit_closed"]

    async def test_probe_failure_reopens(self, backend: Backend, store: HealthStore) -> None:
        """The probe's failure opens the circuit for another open_seconds."""
        await trip(store)
        backend.clock.advance(10)
        assert await store.allow("mercadopago", "send")
        backend.clock.advance(2)
        await store.record("mercadopago", "send", Outcome.UNAVAILABLE, 3_000)
        health = await store.snapshot("mercadopago", "send")
        assert health.circuit is CircuitState.OPEN
        assert health.open_until == at(T0 + 22)
        assert not await store.allow("mercadopago", "send")
        backend.clock.advance(10)
        assert await store.allow("mercadopago", "send")

    async def test_lost_probe_is_handed_out_again(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """A prober that never reports blocks others for probe_seconds only."""
        await trip(store)
        backend.clock.advance(10)
        assert await store.allow("mercadopago", "send")
        backend.clock.advance(29)
        assert not await store.allow("mercadopago", "send")
        backend.clock.advance(1)
        assert await store.allow("mercadopago", "send")

    async def test_late_outcomes_while_open_change_nothing(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """A success from a call sent before the circuit opened does not close it."""
        await trip(store)
        backend.clock.advance(1)
        await store.record("mercadopago", "send", Outcome.SUCCEEDED, 90)
        health = await store.snapshot("mercadopago", "send")
        assert health.circuit is CircuitState.OPEN
        assert health.samples == 6


class TestStreak:
    async def test_counts_failures_in_a_row(self, store: HealthStore) -> None:
        """The snapshot says how many calls failed in a row up to the newest one."""
        await outcomes(store, Outcome.SUCCEEDED, 4)
        await outcomes(store, Outcome.UNAVAILABLE, 2)
        await outcomes(store, Outcome.AMBIGUOUS, 1)
        health = await store.snapshot("mercadopago", "send")
        assert (health.streak, health.circuit) == (3, CircuitState.CLOSED)

    async def test_an_answer_ends_it(self, store: HealthStore) -> None:
        """A success or a rejection (the gateway answered) brings the streak back to 0."""
        await outcomes(store, Outcome.UNAVAILABLE, 3)
        await outcomes(store, Outcome.REJECTED, 1)
        assert (await store.snapshot("mercadopago", "send")).streak == 0

    async def test_no_calls_no_streak(self, store: HealthStore) -> None:
        """A pair nobody called has a streak of 0."""
        assert (await store.snapshot("efi", "charge")).streak == 0

    async def test_forgotten_with_the_window(self, backend: Backend, store: HealthStore) -> None:
        """A streak is kept a window and a bucket (66 s) after its newest failure, as long as the
        circuit's own in-a-row rule keeps it, then reads 0."""
        await outcomes(store, Outcome.UNAVAILABLE, 2)
        backend.clock.advance(66)
        assert (await store.snapshot("mercadopago", "send")).streak == 2
        backend.clock.advance(0.01)
        assert (await store.snapshot("mercadopago", "send")).streak == 0

    async def test_in_the_view(self, store: HealthStore) -> None:
        """The router's one-round-trip view carries the streak of each gateway."""
        await outcomes(store, Outcome.UNAVAILABLE, 2, gateway="efi", operation="charge")
        views = await store.view(["mercadopago", "efi"], "charge")
        assert [health.streak for _, health in views] == [0, 2]


class TestSwapState:
    async def test_returns_the_state_before(self, store: HealthStore) -> None:
        """None the first time, then whatever was stored last; gateways are separate."""
        assert await store.swap_state("efi", HealthState.DOWN) is None
        assert await store.swap_state("efi", HealthState.UP) is HealthState.DOWN
        assert await store.swap_state("efi", HealthState.UP) is HealthState.UP
        assert await store.swap_state("mercadopago", HealthState.IDLE) is None

    async def test_concurrent_reporters_see_one_change(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """Ten reporters on two connections swap the same new state: one sees the old one."""
        other = backend.peer(store)
        await store.swap_state("efi", HealthState.UP)
        previous = await asyncio.gather(
            *((store if i % 2 else other).swap_state("efi", HealthState.DOWN) for i in range(10))
        )
        assert previous.count(HealthState.UP) == 1
        assert previous.count(HealthState.DOWN) == 9

    async def test_redis_key_expires(self, redis_backend: Backend) -> None:
        """The remembered state has a TTL (a day): a removed gateway leaves nothing for good."""
        store = redis_backend.store()
        await store.swap_state("efi", HealthState.DEGRADED)
        client = redis_backend.clients[0]
        keys = [key async for key in client.scan_iter(match=f"{redis_backend.prefix}state:*")]
        assert len(keys) == 1
        assert 0 < await client.pttl(keys[0]) <= CIRCUIT_TTL_MS

    async def test_unknown_stored_value_reads_as_none(self, redis_backend: Backend) -> None:
        """A value this version does not know (written by a newer one) counts as never stored."""
        store = redis_backend.store()
        await redis_backend.clients[0].set(f"{redis_backend.prefix}state:efi", "exploded")
        assert await store.swap_state("efi", HealthState.UP) is None


class TestSettings:
    async def test_defaults_follow_construction_order(self, store: HealthStore) -> None:
        """Enabled, with priorities 1, 2 … in the order given; an unknown gateway comes last."""
        assert await store.get_settings("mercadopago") == GatewaySettings(enabled=True, priority=1)
        assert await store.get_settings("efi") == GatewaySettings(enabled=True, priority=2)
        assert (await store.get_settings("other")).priority == 100

    async def test_set_changes_only_the_given_fields(self, store: HealthStore) -> None:
        """Disabling keeps the priority; re-prioritising keeps it disabled."""
        assert await store.set_settings("efi", enabled=False) == GatewaySettings(
            enabled=False, priority=2
        )
        assert await store.set_settings("efi", priority=7) == GatewaySettings(
            enabled=False, priority=7
        )
        assert await store.get_settings("efi") == GatewaySettings(enabled=False, priority=7)
        assert await store.get_settings("mercadopago") == GatewaySettings(enabled=True, priority=1)

    async def test_seen_by_another_instance_at_once(
        self, backend: Backend, store: HealthStore
    ) -> None:
        """A change made through one process's store is what every other process reads next."""
        other = backend.peer(store)
        await store.set_settings("mercadopago", enabled=False, priority=9)
        assert await other.get_settings("mercadopago") == GatewaySettings(enabled=False, priority=9)
        await other.set_settings("mercadopago", enabled=True)
        assert (await store.get_settings("mercadopago")).enabled is True


class TestView:
    async def test_one_read_equals_the_separate_reads(self, store: HealthStore) -> None:
        """The router's view of several gateways (one round trip on Redis) is exactly each
        gateway's settings and snapshot: an open circuit, latencies, an operator's change."""
        await trip(store, "mercadopago", "charge")
        await outcomes(store, Outcome.SUCCEEDED, 4, gateway="efi", operation="charge")
        await store.record("efi", "charge", Outcome.UNAVAILABLE, 900)
        await store.set_settings("efi", priority=5)
        names = ["efi", "mercadopago", "unknown"]
        separate = [
            (await store.get_settings(name), await store.snapshot(name, "charge")) for name in names
        ]
        assert await store.view(names, "charge") == separate
        assert separate[1][1].circuit is CircuitState.OPEN
        assert separate[0][0].priority == 5
        assert separate[0][1].samples == 5
        assert await store.view([], "charge") == []


class TestRedisAcrossProcesses:
    async def test_circuit_opened_by_one_process_is_open_for_another(
        self, redis_backend: Backend
    ) -> None:
        """Failures reported by two processes add up, and both see the open circuit."""
        first = redis_backend.store()
        second = redis_backend.peer(first)
        await outcomes(first, Outcome.UNAVAILABLE, 3)
        await outcomes(second, Outcome.UNAVAILABLE, 2)
        assert (await first.snapshot("mercadopago", "send")).circuit is CircuitState.OPEN
        assert not await second.allow("mercadopago", "send")

    async def test_server_clock_by_default(self, redis_backend: Backend) -> None:
        """Without an injected clock, Redis's own time runs the cooldown."""
        client = Redis.from_url(REDIS_URL)
        redis_backend.clients.append(client)
        store = RedisHealthStore(
            client, HealthConfig(open_seconds=0.2), prefix=redis_backend.prefix
        )
        await trip(store)
        assert not await store.allow("mercadopago", "send")
        await asyncio.sleep(0.25)
        answers = await asyncio.gather(*(store.allow("mercadopago", "send") for _ in range(5)))
        assert answers.count(True) == 1

    async def test_window_keys_expire(self, redis_backend: Backend) -> None:
        """Every key a record writes has a TTL; settings are the only keys that persist."""
        store = redis_backend.store()
        await trip(store)
        client = redis_backend.clients[0]
        keys = [key async for key in client.scan_iter(match=f"{redis_backend.prefix}*")]
        assert keys
        for key in keys:
            assert await client.pttl(key) > 0


class TestConfig:
    def test_rejects_nonsense(self) -> None:
        """A failure rate above 1 or a zero window is refused at start-up."""
        with pytest.raises(ValueError, match="failure_rate"):
            HealthConfig(failure_rate=1.5)
        with pytest.raises(ValueError, match="positive"):
            HealthConfig(window_seconds=0)
        with pytest.raises(ValueError, match="min_samples"):
            HealthConfig(min_samples=0)
        with pytest.raises(ValueError, match="down_after_failures"):
            HealthConfig(down_after_failures=0)
        with pytest.raises(ValueError, match="degraded_below"):
            HealthConfig(degraded_below=1.2)

    def test_build_picks_memory_without_redis(self) -> None:
        """The embedded default (no Redis) gets the in-memory store."""
        assert isinstance(build_health_store(None, gateways=GATEWAYS), MemoryHealthStore)


class TestRouterView:
    async def test_concurrent_views_share_one_script_run(self, redis_backend: Backend) -> None:
        """A batch's payments route at once: their identical reads of the gateways' health
        are one script run on Redis, and each gets the same view."""
        store = redis_backend.store()
        assert isinstance(store, RedisHealthStore)
        await store.record("mercadopago", "charge", Outcome.SUCCEEDED, 40)
        stats = await store.redis.info("commandstats")
        before = int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
        views = await asyncio.gather(*(store.view(list(GATEWAYS), "charge") for _ in range(8)))
        stats = await store.redis.info("commandstats")
        after = int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
        assert after - before == 1
        assert all(view == views[0] for view in views)
        assert views[0][0][1].samples == 1
