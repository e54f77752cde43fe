"""API shapes of a user's limits: what is in force, what is spent, and an admin's overrides."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from pixwave.kit.money import PositiveCentavos


def _clock_time(value: object) -> object:
    """`HH:MM` text (local time, no offset: the zone is the operator's `LIMIT_TIMEZONE`)."""
    if isinstance(value, str):
        hours, sep, minutes = value.partition(":")
        if not (sep and len(hours) == len(minutes) == 2 and (hours + minutes).isdigit()):
            raise ValueError("a local time as HH:MM, e.g. 22:00")
        return time(int(hours), int(minutes))
    if isinstance(value, time):
        return value
    raise ValueError("a local time as HH:MM, e.g. 22:00")


#: A wall-clock time in the operator's zone, written `HH:MM` both ways (JSON Schema's
#: `format: time` would demand an offset, which a local rule does not have).
ClockTime = Annotated[
    time,
    BeforeValidator(_clock_time),
    PlainSerializer(lambda value: f"{value:%H:%M}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}),
]


class LimitsUpdate(BaseModel):
    """A user's own limits, replacing any earlier ones. `null` (or absent) keeps the operator's
    default for that limit; there is no per-user "unlimited" — give a large amount instead."""

    model_config = ConfigDict(extra="forbid")

    per_transaction: PositiveCentavos | None = Field(
        default=None, description="Largest single withdrawal or transfer, in centavos."
    )
    daily: PositiveCentavos | None = Field(
        default=None, description="Most sent per calendar day, in centavos."
    )
    nighttime: PositiveCentavos | None = Field(
        default=None, description="Most sent during one night period, in centavos."
    )
    night_starts: ClockTime | None = Field(
        default=None,
        description="When this user's night period starts (`HH:MM`, local time; the Central "
        "Bank lets an individual pick 22:00 instead of 20:00).",
        examples=["22:00"],
    )


class LimitOverrides(LimitsUpdate):
    """The values an admin set for this user (`null`: the operator's default)."""

    model_config = ConfigDict(extra="ignore")


class LimitsRead(BaseModel):
    """The limits in force for a user now, and how much of each period is spent."""

    object: str = "limits"
    user_id: str
    per_transaction: int | None = Field(description="Centavos; `null`: no such limit.")
    daily: int | None = Field(description="Centavos per calendar day; `null`: no such limit.")
    nighttime: int | None = Field(description="Centavos per night period; `null`: no limit.")
    night_starts: ClockTime
    night_ends: ClockTime
    timezone: str = Field(description="Days and nights are counted in this IANA time zone.")
    overrides: LimitOverrides
    is_night: bool = Field(description="Whether it is the night period now.")
    spent_today: int = Field(
        description="Centavos sent today by withdrawals (not failed) and transfers."
    )
    spent_tonight: int | None = Field(description="…during this night period; `null` by day.")
    remaining_today: int | None = Field(description="`null` without a daily limit.")
    remaining_tonight: int | None = Field(description="`null` by day or without a night limit.")
    day_ends_at: datetime
    night_ends_at: datetime | None
