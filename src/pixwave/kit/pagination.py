"""Cursor pagination, Stripe-style: newest first, `starting_after=<id>`, `has_more`.

Ids are time-ordered ULIDs, so "after" in the list means "older than": `WHERE id < cursor`.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from pixwave.exceptions import BadRequest

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")]
StartingAfter = Annotated[
    str | None,
    Query(max_length=40, description="Return items older than this id (the last id you got)."),
]


class InvalidCursor(BadRequest):
    """An empty page would read as "no more items": a cursor that is not an item of this list
    (unknown, another user's, of another wallet) is refused instead, so a client's paging bug
    cannot look like the end of the data."""

    code = "invalid_cursor"
    title = "starting_after is not an item of this list"


def check_cursor(found: bool, cursor: str) -> None:
    """Raise InvalidCursor unless the list's own lookup ``found`` the cursor item."""
    if not found:
        raise InvalidCursor(f"starting_after={cursor!r} is not an item of this list")


class Page(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool = Field(description="True when another page exists after the last item.")
    next_cursor: str | None = Field(description="Pass as `starting_after` to get the next page.")


def page_of(items: list[T], limit: int, cursor_of: str = "id") -> Page[T]:
    """Build a page from `limit + 1` fetched items: the extra one only proves there is more."""
    has_more = len(items) > limit
    data = items[:limit]
    next_cursor = getattr(data[-1], cursor_of) if has_more and data else None
    return Page[T](data=data, has_more=has_more, next_cursor=next_cursor)
