"""Names and descriptions refuse control characters and bidirectional overrides."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from pixwave.accounts.schemas import TokenCreate, UserCreate
from pixwave.kit.text import PlainText
from pixwave.payments.schemas import DepositCreate, RefundCreate, WithdrawalCreate
from pixwave.wallet.schemas import AdjustmentCreate, TransferCreate


class Named(BaseModel):
    name: PlainText


REFUSED = [
    "\u202eR$ 01,00",  # right-to-left override: displays reversed
    "pay\u202a",
    "pay\u202c",
    "a\u2066b\u2069",  # isolates
    "line\nforged log line",
    "tab\there",
    "nul\x00",
    "del\x7f",
    "c1\x85",
]
ACCEPTED = ["Ana Souza", "São João — pão de açúcar", "Лена", "محمد", "日本", "🍕 almoço", "a'b\"c"]


class TestPlainText:
    @pytest.mark.parametrize("text", REFUSED)
    def test_refused_with_a_stable_type(self, text: str) -> None:
        """Controls and bidi overrides are `invalid_text`, with the code point named."""
        with pytest.raises(ValidationError) as refused:
            Named(name=text)
        [error] = refused.value.errors()
        assert error["type"] == "invalid_text"
        assert "U+" in error["msg"]

    @pytest.mark.parametrize("text", ACCEPTED)
    def test_every_script_passes(self, text: str) -> None:
        """Letters of every script, accents, punctuation and emoji are ordinary text."""
        assert Named(name=text).name == text


class TestWhereItApplies:
    @pytest.mark.parametrize(
        ("model", "fields"),
        [
            (UserCreate, {"email": "a@example.com", "document": "52998224725", "name": "{}"}),
            (TokenCreate, {"name": "{}"}),
            (TransferCreate, {"to_wallet_id": "wal_x", "amount": 1, "description": "{}"}),
            (
                AdjustmentCreate,
                {"wallet_id": "wal_x", "direction": "credit", "amount": 1, "reason": "ok {}"},
            ),
            (DepositCreate, {"amount": 100, "description": "{}"}),
            (WithdrawalCreate, {"amount": 100, "pix_key": "a@example.com", "description": "{}"}),
            (RefundCreate, {"description": "{}"}),
        ],
    )
    def test_every_name_and_description(
        self, model: type[BaseModel], fields: dict[str, object]
    ) -> None:
        """Every free-text field a user or operator writes refuses an override."""
        data = {k: v.format("\u202e") if isinstance(v, str) else v for k, v in fields.items()}
        with pytest.raises(ValidationError) as refused:
            model.model_validate(data)
        assert {e["type"] for e in refused.value.errors()} == {"invalid_text"}
