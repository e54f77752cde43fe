"""Shared fixtures: real MariaDB and Redis, the app over ASGI, factories, and the ledger audit.

Tests that need a service *fail* when it is missing under CI (`CI=true`) and skip with a loud
reason elsewhere, so a green CI run always means the services were really exercised.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest
import redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.app import create_app
from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.ledger.audit import run_audit
from pixwave.ledger.service import forget_system_accounts
from pixwave.migrate import upgrade, upgrade_async
from pixwave.models import Base
from pixwave.resources import Resources

MARIADB_HOST = os.environ.get("TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("TEST_MARIADB_PORT", "3306"))
MARIADB_USER = os.environ.get("TEST_MARIADB_USER", "root")
MARIADB_PASSWORD = os.environ.get("TEST_MARIADB_PASSWORD", "")
TEST_DATABASE = os.environ.get("TEST_MARIADB_DATABASE", "pixwave_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The night-time limit (R$ 1,000 from 20:00 to 06:00 Brasília time, on by default) would make
# the suite's outcome depend on the hour it runs at. It is off here — and in every process the
# tests start, which inherit the environment — except in the limits tests, which set it and a
# clock of their own (tests/limits).
os.environ.setdefault("LIMIT_NIGHTTIME", "none")
# Tests call the API far faster than any client may: the rate limiter (on by default with Redis)
# is off here and in the processes the tests start; its own tests (tests/kit/test_ratelimit*)
# turn it on.
os.environ.setdefault("RATE_LIMIT_ENABLED", "false")


def mariadb_url(database: str) -> str:
    password = f":{MARIADB_PASSWORD}" if MARIADB_PASSWORD else ""
    return (
        f"mysql+aiomysql://{MARIADB_USER}{password}@{MARIADB_HOST}:{MARIADB_PORT}/{database}"
        "?charset=utf8mb4"
    )


def _missing(service: str, error: Exception) -> None:
    message = f"{service} is not reachable ({error}); start it (see README) to run this test"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def recreate_mariadb_database(name: str) -> None:
    """Drop and create a database on the test server (fails/skips when the server is absent)."""
    try:
        connection = pymysql.connect(
            host=MARIADB_HOST,
            port=MARIADB_PORT,
            user=MARIADB_USER,
            password=MARIADB_PASSWORD,
            connect_timeout=3,
        )
    except pymysql.MySQLError as exc:
        _missing("MariaDB", exc)
        raise
    with connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


_migrated: dict[str, str] = {}


def fresh_mariadb(name: str) -> str:
    """A new, migrated MariaDB database for a test that serves the app itself; its URL."""
    recreate_mariadb_database(name)
    url = mariadb_url(name)
    upgrade(url)
    return url


async def migrated_database(backend: str, tmp_dir: Path) -> str:
    """The URL of a freshly migrated database of `backend`, created once per test run."""
    if backend not in _migrated:
        if backend.startswith("mariadb"):
            recreate_mariadb_database(TEST_DATABASE)
            url = mariadb_url(TEST_DATABASE)
        else:
            url = f"sqlite+aiosqlite:///{tmp_dir / 'pixwave.db'}"
        await upgrade_async(url)
        _migrated[backend] = url
    return _migrated[backend]


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _missing("Redis", exc)
    client.flushdb()
    client.close()
    return REDIS_URL


def make_settings(**overrides: Any) -> Settings:
    # The test process starts many apps: freezing its objects each time would keep every
    # earlier test's garbage for good.
    overrides.setdefault("python_gc_threshold", 0)
    return Settings(_env_file=None, **overrides)


_TABLES_CHILD_FIRST = [t.name for t in reversed(Base.metadata.sorted_tables)]


async def wipe(resources: Resources) -> None:
    """Delete every row (children first); far faster than recreating the schema per test."""
    forget_system_accounts()
    async with resources.engine.begin() as connection:
        for name in _TABLES_CHILD_FIRST:
            if name == "transactions":
                # Refunds point at their deposit in the same table: children first there too.
                await connection.execute(
                    text("DELETE FROM transactions WHERE parent_id IS NOT NULL")
                )
            await connection.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - our own table names


async def assert_ledger_balances(resources: Resources) -> None:
    async with resources.sessionmaker() as session:
        report = await run_audit(session)
    assert report.ok, "ledger audit failed:\n" + "\n".join(report.problems)


@pytest.fixture(scope="session")
async def backends() -> AsyncIterator[dict[str, Resources]]:
    """Resources per database backend, built on first use and closed at the end of the run."""
    built: dict[str, Resources] = {}
    yield built
    for resources in built.values():
        await resources.close()


async def _backend(
    name: str, built: dict[str, Resources], tmp: pytest.TempPathFactory, **settings: object
) -> Resources:
    if name not in built:
        url = await migrated_database(name.split("-")[0], Path(tmp.getbasetemp()))
        built[name] = build_resources(make_settings(database_url=url, db_pool_size=30, **settings))
    return built[name]


@pytest.fixture
async def mariadb_resources(
    backends: dict[str, Resources], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Resources:
    """MariaDB with Redis for locks: the production shape."""
    return await _backend("mariadb", backends, tmp_path_factory, redis_url=redis_url)


@pytest.fixture
async def resources(
    request: pytest.FixtureRequest, mariadb_resources: Resources
) -> AsyncIterator[Resources]:
    """MariaDB + Redis, emptied before the test and audited after it.

    Mark a test `@pytest.mark.corrupts_ledger` when it breaks the ledger on purpose.
    """
    await wipe(mariadb_resources)
    if mariadb_resources.redis is not None:
        await mariadb_resources.redis.flushdb()
    mariadb_resources.token_cache.clear()
    yield mariadb_resources
    if request.node.get_closest_marker("corrupts_ledger") is None:
        await assert_ledger_balances(mariadb_resources)


@pytest.fixture(params=["mariadb", "sqlite"])
async def any_resources(
    request: pytest.FixtureRequest,
    backends: dict[str, Resources],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Resources]:
    """The same test on both supported databases (MariaDB and the embedded SQLite)."""
    res = await _backend(f"{request.param}-plain", backends, tmp_path_factory)
    await wipe(res)
    res.token_cache.clear()
    yield res
    if request.node.get_closest_marker("corrupts_ledger") is None:
        await assert_ledger_balances(res)


@pytest.fixture
async def session(any_resources: Resources) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction, committed by the test when it wants to."""
    async with any_resources.sessionmaker() as s:
        yield s


@asynccontextmanager
async def app_client(resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app built on `resources` (in-process, over ASGI)."""
    transport = httpx.ASGITransport(app=create_app(resources.settings, resources))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as c:
        yield c


@pytest.fixture
async def client(resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(resources) as c:
        yield c


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corrupts_ledger: the test breaks the ledger on purpose")


#: Fixtures of their own modules, shared by every test directory.
pytest_plugins = ["tests.aws"]
