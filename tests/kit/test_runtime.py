"""GC tuning of the server processes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pixwave.kit.runtime import OLDER_GENERATION_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()  # the test process never freezes otherwise (make_settings)
    gc.set_threshold(*before)


def test_freezes_start_up_objects_and_raises_the_threshold(restored_gc: None) -> None:
    """What is alive now leaves the collected generations; young collections become rarer."""
    frozen = gc.get_freeze_count()
    assert tune_gc(50_000) is True
    assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == (50_000, OLDER_GENERATION_THRESHOLD, OLDER_GENERATION_THRESHOLD)


def test_zero_leaves_python_alone(restored_gc: None) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert tune_gc(0) is False
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
