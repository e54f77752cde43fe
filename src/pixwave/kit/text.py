"""Free text that people read: names, descriptions, reasons.

Such text ends up in statements, operator consoles, the payer's bank app (a charge's
description) and logs. Control characters can forge extra log lines or break displays, and
bidirectional overrides (U+202A–U+202E, U+2066–U+2069: "Trojan Source") make text read
differently from what it is — a description that shows "R$ 10" while saying something else.
Both are refused with the stable error type ``invalid_text``; ordinary letters of every script,
accents and emoji pass.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

#: C0 controls (tab and newline included), DEL, C1 controls, and the bidi embeddings,
#: overrides and isolates.
_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain(value: str) -> str:
    found = _FORBIDDEN.search(value)
    if found is not None:
        raise PydanticCustomError(
            "invalid_text",
            "control characters and bidirectional overrides are not allowed "
            "(found U+{code:04X} at position {position})",
            {"code": ord(found.group()), "position": found.start()},
        )
    return value


#: A str without control characters or bidirectional overrides (add length limits with Field).
PlainText = Annotated[str, AfterValidator(_plain)]
