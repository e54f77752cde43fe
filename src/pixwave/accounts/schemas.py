"""API shapes for users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field
from pydantic_core import PydanticCustomError

from pixwave.accounts.models import Role
from pixwave.kit.text import PlainText
from pixwave.pix import PixFormatError, validate_document


def _document(value: str) -> str:
    try:
        _kind, normalised = validate_document(value)
    except PixFormatError as exc:
        raise PydanticCustomError("invalid_document", str(exc)) from exc
    return normalised


Document = Annotated[
    str,
    Field(min_length=11, max_length=18, description="CPF or CNPJ, with or without punctuation."),
    AfterValidator(_document),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: PlainText = Field(min_length=1, max_length=200)
    email: EmailStr
    document: Document
    role: Role = Role.USER


class UserRead(BaseModel):
    id: str
    name: str
    email: str
    document_type: str | None
    document: str | None
    role: Role
    wallet_id: str | None
    created_at: datetime
    deactivated_at: datetime | None = Field(
        default=None,
        description="Set while the user is deactivated: none of their tokens authenticates.",
    )


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: PlainText = Field(default="", max_length=100, description="A label for operators.")


class TokenCreated(BaseModel):
    id: str
    user_id: str
    name: str
    prefix: str
    token: str | None = Field(
        description="Shown once; only its hash is stored. A replay of the creating request "
        "(same Idempotency-Key) returns null here: revoke and issue another if it was lost."
    )
    created_at: datetime


class TokenRead(BaseModel):
    """A token as operators and its owner see it: never the secret, never its hash."""

    id: str
    user_id: str
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When it last authenticated a request, to within about a minute."
    )
    revoked_at: datetime | None


class UserStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: PlainText = Field(
        default="", max_length=200, description="Why, for the operators' log."
    )
