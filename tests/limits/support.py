"""Instants for the limits tests, given in Brasília time (December 2026)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

BRT = ZoneInfo("America/Sao_Paulo")  # UTC−03:00 all year since 2019


def brt(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, micro, tzinfo=BRT)
