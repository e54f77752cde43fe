"""The payments engine on fakes: SQLite, in-memory health and leases, a clock moved by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixwave.bootstrap import build_resources
from pixwave.resources import Resources
from tests.conftest import assert_ledger_balances, make_settings, migrated_database, wipe
from tests.support import EngineBench


@pytest.fixture
async def bench(
    backends: dict[str, Resources], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[EngineBench]:
    """Gateways ``primary`` and ``secondary`` (preferred in that order), an empty embedded
    database; the ledger audited after the test."""
    if "sqlite-engine" not in backends:
        url = await migrated_database("sqlite", Path(tmp_path_factory.getbasetemp()))
        backends["sqlite-engine"] = build_resources(make_settings(database_url=url))
    resources = backends["sqlite-engine"]
    await wipe(resources)
    yield EngineBench(resources, "primary", "secondary")
    await assert_ledger_balances(resources)
