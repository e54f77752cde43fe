"""The strict JSON parser: what it refuses, and that it never refuses a valid body."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixwave.kit.body import InvalidJson, parse_json

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


class TestValidBodies:
    @settings(max_examples=300, deadline=None)
    @given(_json_values)
    def test_any_json_round_trips(self, value: Any) -> None:
        """Every JSON document without repeated keys parses to itself, colons in text or not."""
        assert parse_json(orjson.dumps(value)) == value
        assert parse_json(json.dumps(value, indent=1).encode()) == value

    def test_colon_and_escaped_quote_inside_strings(self) -> None:
        """A `:` or `\\"` inside a string is not mistaken for a second key."""
        body = b'{"description": "at 12:30 \\"a\\": 1", "amount": 1}'
        assert parse_json(body) == {"description": 'at 12:30 "a": 1', "amount": 1}

    def test_equal_keys_in_different_objects(self) -> None:
        """The same key in two objects (or at two levels) is not a duplicate."""
        assert parse_json(b'[{"a": 1}, {"a": {"a": 2}}]') == [{"a": 1}, {"a": {"a": 2}}]


class TestRefusedBodies:
    @pytest.mark.parametrize(
        ("body", "key"),
        [
            (b'{"amount": 1, "amount": 100000}', "amount"),
            (b'{"x": {"a": 1, "b": 2, "a": 3}}', "a"),
            (b'[{"k": "12:30", "k": 1}]', "k"),
            (b'{"a\\u0062": 1, "ab": 2}', "ab"),
        ],
    )
    def test_duplicate_key_is_named(self, body: bytes, key: str) -> None:
        """A repeated key, top-level or nested, escaped or not, is refused by name."""
        with pytest.raises(InvalidJson, match=f"duplicate key '{key}'"):
            parse_json(body)

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b'{"a": "\xff"}', "not UTF-8"),
            (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),
            (b"[" * 10_000 + b"]" * 10_000, "depth"),
            (b"{", "unexpected end"),
            (b'{"a": NaN}', "unexpected character"),
            (b'"\\ud800"', "surrogate"),
        ],
    )
    def test_not_json(self, body: bytes, reason: str) -> None:
        """Invalid UTF-8, deep nesting, malformed text, NaN, lone surrogates: one exception."""
        with pytest.raises(InvalidJson, match=reason):
            parse_json(body)

    def test_invalid_json_is_a_json_decode_error(self) -> None:
        """FastAPI turns exactly this exception type into its `json_invalid` error."""
        assert issubclass(InvalidJson, json.JSONDecodeError)

    def test_deep_nesting_under_orjsons_limit_with_a_colon(self) -> None:
        """Near orjson's 1024 levels, the exact duplicate check (Python's stack is shallower)
        refuses the body as too deep instead of crashing; no schema of ours nests that far."""
        body = b'{"a": "1:2", "b": ' + b"[" * 1020 + b"]" * 1020 + b"}"
        with pytest.raises(InvalidJson, match="nested too deeply"):
            parse_json(body)
