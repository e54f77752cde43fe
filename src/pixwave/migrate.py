"""Run Alembic from code, so `pixwave migrate` works from an installed package anywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pixwave.db import ensure_sqlite_directory

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (synchronous; call outside an event loop)."""
    ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), revision)


def check(url: str) -> None:
    """Raise if the models and the migrations disagree (`alembic check`)."""
    command.check(alembic_config(url))


async def _run_on_connection(url: str, action: Callable[[Config], None]) -> None:
    """Run an Alembic command on a connection we open, for callers inside an event loop."""
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:

            def run(sync_connection: object) -> None:
                config = alembic_config(url)
                config.attributes["connection"] = sync_connection
                action(config)

            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade_async(url: str, revision: str = "head") -> None:
    await _run_on_connection(url, lambda config: command.upgrade(config, revision))


async def downgrade_async(url: str, revision: str) -> None:
    await _run_on_connection(url, lambda config: command.downgrade(config, revision))


async def check_async(url: str) -> None:
    await _run_on_connection(url, command.check)
