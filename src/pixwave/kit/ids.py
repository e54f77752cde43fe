"""Public identifiers: a type prefix plus a monotonic ULID (`txn_01JC…`).

Time-ordered ids keep InnoDB inserts append-only and make `ORDER BY id` mean "by creation", which
is what cursor pagination needs; the prefix makes a pasted id self-describing in logs and support.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as ULID specifies
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_RAND_MAX = (1 << 80) - 1


#: RFC 4648 base32 → Crockford: both alphabets are in ascending order, so sorting survives.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())


def _encode(value: int) -> str:
    """128 bits → 26 Crockford chars, in C: 20 bytes are 32 base32 chars, the first 6 all zero."""
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD).decode()


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
        return _encode((now << 80) | _last_rand)


def new_id(prefix: str) -> str:
    """`new_id("txn")` → "txn_01JC…" (30 chars for a 3-letter prefix)."""
    return f"{prefix}_{ulid()}"
