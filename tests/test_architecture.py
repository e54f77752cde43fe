"""Provider knowledge lives with the provider: outside a family's own packages, no module of
``src/pixwave`` names a gateway family in its code or its strings (a comment may cite one as
an example). The one list of registered specs (``gateways/specs.py``) is the exception, and
migrations, which are history and never edited once released.
"""

from __future__ import annotations

import io
import itertools
import re
import tokenize
from pathlib import Path

import pytest

from pixwave.gateways.specs import SPECS

SOURCE = Path(__file__).parents[1] / "src" / "pixwave"
FAMILIES = [spec.family for spec in SPECS]
#: Other names the families go by in prose: the company's old name, the accented spelling.
ALIASES = {"mercadopago": ["mercado pago"], "efi": ["efí", "gerencianet"]}
EXEMPT = {SOURCE / "gateways" / "specs.py"}
EXEMPT_DIRS = {SOURCE / "migrations"}

_WORDS = [w for family in FAMILIES for w in (family, *ALIASES.get(family, []))]
_IN_TEXT = re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape, _WORDS)) + r")(?![a-z0-9])", re.I)
_STRINGS = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def _names_a_family(identifier: str) -> bool:
    """``efi_doc``, ``MercadoPagoConnector``, ``SANDBOX_EFI_HMAC``: split into words (snake
    and camel case), then a family is one word or two adjacent ones run together."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", identifier).lower()
    words = [word for word in spaced.split("_") if word]
    joined = {a + b for a, b in itertools.pairwise(words)}
    return bool(set(FAMILIES) & (set(words) | joined))


def mentions(source: str) -> list[str]:
    """Every identifier or string of ``source`` that names a family, with its line."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        named = (token.type == tokenize.NAME and _names_a_family(token.string)) or (
            token.type in _STRINGS and _IN_TEXT.search(token.string) is not None
        )
        if named:
            found.append(f"{token.start[0]}: {token.string[:70]}")
    return found


def _owned(path: Path) -> bool:
    """Inside ``gateways/<family>/`` or ``sandbox/<family>/``."""
    parts = path.relative_to(SOURCE).parts
    return len(parts) > 2 and parts[0] in {"gateways", "sandbox"} and parts[1] in FAMILIES


def test_no_module_outside_a_family_names_one() -> None:
    offences = [
        f"{path.relative_to(SOURCE)}:{mention}"
        for path in sorted(SOURCE.rglob("*.py"))
        if path not in EXEMPT and not EXEMPT_DIRS & set(path.parents) and not _owned(path)
        for mention in mentions(path.read_text(encoding="utf-8"))
    ]
    assert offences == []


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("x = 'efi'\n", True),
        ("from pixwave.gateways.efi import spec\n", True),
        ("MercadoPagoConnector = 1\n", True),
        ("SANDBOX_EFI_HMAC = 1\n", True),
        ("x = 'Efí answers'\n", True),
        ("x = f'{a} Mercado Pago'\n", True),
        ("# Efí does it this way\nx = 1\n", False),
        ("define = 'efficient prefix'\n", False),
    ],
)
def test_the_check_sees_names_and_strings_not_comments(source: str, named: bool) -> None:
    assert bool(mentions(source)) is named
