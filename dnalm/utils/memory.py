"""Host memory housekeeping."""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Give the C heap's free pages back to the operating system (glibc ``malloc_trim``); False where unsupported.

    glibc returns freed heap memory only from the top of the heap. Data preparation frees tens of MB of
    sequence strings and tokenizer temporaries below objects that stay alive, and those pages would stay
    resident for the whole run; trimming releases them (a few milliseconds) without touching live memory.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
