"""Versioned, compact bytes for a person's detector state.

Layout: ``b"HBD"``, one version byte, then zlib-compressed msgpack of plain lists and numbers. The river
statistics are not pickled: a baseline stores its window of learned values and rebuilds them, which is
exact (rolling quantiles depend only on the window) and a fraction of the size.
"""
from __future__ import annotations

import zlib

import msgspec

from app.core.errors import BeidouError

STATE_VERSION = 2
"""Bump whenever the meaning or layout of the state changes; old state then raises IncompatibleState."""

_MAGIC = b"HBD"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class IncompatibleState(BeidouError):
    """Stored detector state was written by another state version (or is not detector state at all).

    The caller rebuilds the detector by replaying the person's history.
    """

    def __init__(self, message: str, *, found: int | None = None):
        super().__init__(message)
        self.found = found


def encode(state: object) -> bytes:
    return _MAGIC + bytes([STATE_VERSION]) + zlib.compress(_encoder.encode(state), 6)


def decode(data: bytes) -> object:
    if len(data) < 4 or data[:3] != _MAGIC:
        raise IncompatibleState("not detector state")
    found = data[3]
    if found != STATE_VERSION:
        raise IncompatibleState(f"detector state version {found}, this code reads {STATE_VERSION}", found=found)
    try:
        return _decoder.decode(zlib.decompress(data[4:]))
    except (zlib.error, msgspec.DecodeError) as exc:
        raise IncompatibleState(f"detector state is damaged: {exc}", found=found) from None
