"""Secrets are compared in constant time: no `==` or `!=` against a secret in `src/`.

A comparison that stops at the first differing character tells a caller, by how long a refusal
takes, how much of a guess was right. Every check of a secret a caller sends — webhook
signatures and `?hmac=` secrets, the metrics token, the simulators' client credentials and
access tokens — goes through `hmac.compare_digest`. API tokens are never compared at all: the
SHA-256 of the presented token is looked up (`accounts/auth.py`), so the database index finds
the row or not, and the token itself meets no string comparison.

The walk below reads every module's syntax tree and fails on an equality between operands
named like a secret (secret, token, signature, hmac, password, digest, api key, credential),
unless the comparison is in :data:`NOT_SECRETS` with the reason it is not one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pixwave"

_SECRET = re.compile(r"secret|token|signature|hmac|password|digest|api_?key|credential", re.I)
#: Names that carry the word but hold no secret: ids, kinds, counts.
_NOT_A_SECRET = re.compile(r"(_id|_type|_count|_name|_prefix)$")

#: (module, comparison) → why it is not a comparison of a secret.
NOT_SECRETS: dict[tuple[str, str], str] = {
    ("accounts/repository.py", "K.token_hash == bindparam('token_hash')"): (
        "SQL: the row is found by the SHA-256 of the token, an index lookup in the database"
    ),
    ("gateways/pixapi/client.py", "self._cached.value == token"): (
        "our own cached OAuth token against the one a refusal was answered to (drop it once)"
    ),
    ("kit/locks.py", "current[0] == token"): "a lock's random owner tag, never sent by a caller",
    ("kit/locks.py", "current[0] != token"): "a lock's random owner tag, never sent by a caller",
    ("payments/lease.py", "self._owner(transaction_id) != token"): (
        "a lease's random owner tag, never sent by a caller"
    ),
    ("payments/lease.py", "held[0] == token"): "a lease's random owner tag, never sent by a caller",
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return _name(node.value)
    if isinstance(node, ast.Call):
        return _name(node.func)
    return None


def _secret_named(node: ast.expr) -> bool:
    name = _name(node)
    return bool(name and _SECRET.search(name) and not _NOT_A_SECRET.search(name))


def secret_equalities(source: str) -> list[str]:
    """Every `==`/`!=` of the module with an operand named like a secret (none a literal)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(operand, ast.Constant) for operand in operands):
            continue  # `grant_type != "client_credentials"`: a literal is no secret
        if any(_secret_named(operand) for operand in operands):
            found.append(ast.unparse(node))
    return found


def _all_in_src() -> set[tuple[str, str]]:
    return {
        (path.relative_to(SRC).as_posix(), comparison)
        for path in sorted(SRC.rglob("*.py"))
        for comparison in secret_equalities(path.read_text(encoding="utf-8"))
    }


class TestNoSecretComparedWithEquals:
    def test_src_compares_secrets_in_constant_time(self) -> None:
        """No `==`/`!=` against a secret in src/, beyond the listed non-secrets."""
        unexplained = sorted(_all_in_src() - set(NOT_SECRETS))
        assert unexplained == [], "use hmac.compare_digest (or list why it is no secret)"

    def test_every_listed_exception_still_exists(self) -> None:
        """A listed comparison that is gone leaves the list, so the list never hides a new one."""
        assert sorted(set(NOT_SECRETS) - _all_in_src()) == []


class TestTheWalkFindsThem:
    @pytest.mark.parametrize(
        "source",
        [
            "ok = given == settings.webhook_secret",
            "if token != expected: raise Refused()",
            "ok = request.query['hmac'] == hmac_secret",
            "ok = signature == compute_signature(body)",
            "ok = headers['x-signature'] == expected",
            "ok = self.config.access_token == presented",
            "ok = a == b == client_secret",
        ],
    )
    def test_a_secret_compared_with_equals_is_found(self, source: str) -> None:
        """Each spelling of a secret compared with == or != is reported."""
        assert secret_equalities(source) != []

    @pytest.mark.parametrize(
        "source",
        [
            "ok = hmac.compare_digest(given.encode(), secret.encode())",
            "ok = body['grant_type'] != 'client_credentials'",
            "ok = token_id == row.id",
            "ok = amount == expected_amount",
            "ok = secret is None",
        ],
    )
    def test_what_is_no_secret_equality_is_not(self, source: str) -> None:
        """compare_digest, a literal, an id, or an identity check is not reported."""
        assert secret_equalities(source) == []
