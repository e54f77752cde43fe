"""What a job may use: the few things jobs reach for, not the whole process.

Jobs are typed against :class:`JobContext`, a protocol, so a job module imports nothing of the
composition root (no import cycle through ``resources``) and a test can hand a job any object
with these attributes. :class:`~pixwave.resources.Resources` is the one the root builds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from pixwave.config import Settings
    from pixwave.gateways.router import Router
    from pixwave.gateways.spec import GatewaySpec
    from pixwave.kit.batching import Batcher
    from pixwave.kit.locks import LockManager
    from pixwave.notifications.sns import SnsPublisher
    from pixwave.payments.engine import Engine
    from pixwave.worker.jobs import JobQueue


class JobContext(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> AsyncEngine:
        """The database engine (its dialect decides a few statements)."""
        ...

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def locks(self) -> LockManager: ...

    @property
    def jobs(self) -> JobQueue: ...

    @property
    def inbox_batch(self) -> Batcher[str, None] | None:
        """Inbox events handled together (``ENGINE_BATCH``); None: each alone."""
        ...

    @property
    def advance_batch(self) -> Batcher[str, None] | None:
        """Payment looks taken together (``ENGINE_BATCH``); None: each alone."""
        ...

    @property
    def payments(self) -> Engine:
        """The payments engine."""
        ...

    @property
    def router(self) -> Router: ...

    @property
    def specs(self) -> dict[str, GatewaySpec[Any]]: ...

    @property
    def sns(self) -> SnsPublisher | None: ...

    @property
    def private_webhook_urls(self) -> bool:
        """Operator webhooks may go to private addresses (decided once, at start)."""
        ...
