"""Seeded content hashes: every sampling, capping, shuffling and splitting decision uses these.

``content_hash(seed, *parts)`` is blake2b (8-byte digest) of the seed and the parts, each part
UTF-8 encoded (lone surrogates passed through) and prefixed by its length, so ``("ab", "c")``
and ``("a", "bc")`` differ. It is the same on every worker, run and Python process (unlike
the salted built-in ``hash()``), and changing ``seed`` gives an independent hash.
"""

from __future__ import annotations

import hashlib

HASH_BITS = 64


def content_digest(seed: int, *parts: str, digest_size: int = HASH_BITS // 8) -> bytes:
    """blake2b digest of ``seed`` and ``parts`` (see the module docstring)."""
    h = hashlib.blake2b(digest_size=digest_size)
    h.update(int(seed).to_bytes(16, "little", signed=True))
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


def content_hash(seed: int, *parts: str) -> int:
    """``content_digest`` as an integer in ``[0, 2**64)``."""
    return int.from_bytes(content_digest(seed, *parts), "big")


def unit_hash(seed: int, *parts: str) -> float:
    """``content_hash`` scaled to ``[0, 1)``: a uniform, reproducible draw per content."""
    return content_hash(seed, *parts) / 2.0**HASH_BITS
