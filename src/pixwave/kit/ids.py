"""Public identifiers: a type prefix plus a monotonic ULID (`txn_01JC…`).

Time-ordered ids keep InnoDB inserts append-only and make `ORDER BY id` mean "by creation", which
is what cursor pagination needs; the prefix makes a pasted id self-describing in logs and support.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as ULID specifies
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_RAND_MAX = (1 << 80) - 1


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def ulid() -> str:
    """A 26-char ULID, strictly increasing within this process even inside one millisecond."""
    global _last_ms, _last_rand
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now = _last_ms
            _last_rand += 1
            if _last_rand > _RAND_MAX:  # 2^80 ids in one ms: borrow the next millisecond
                now += 1
                _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        else:
            # Half the random space leaves room to increment without overflowing.
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = now
        return _encode(now, 10) + _encode(_last_rand, 16)


def new_id(prefix: str) -> str:
    """`new_id("txn")` → "txn_01JC…" (30 chars for a 3-letter prefix)."""
    return f"{prefix}_{ulid()}"
