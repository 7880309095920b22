"""Freed heap memory goes back to the operating system after data preparation."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dnalm.utils.memory import _malloc_trim

# In a fresh interpreter, so the heap holds nothing from other tests.
_SCRIPT = textwrap.dedent("""
    from dnalm.utils.memory import release_free_heap

    def resident_mb():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * 4096 / 2**20

    strings = [bytes([i % 256]) * 1500 for i in range(60_000)]  # ~90 MB of heap chunks, like sequence strings
    keeper = [bytearray(1000) for _ in range(100)]  # allocated above them and kept, as the token ids are
    before = resident_mb()
    del strings
    after_free = resident_mb()
    trimmed = release_free_heap()
    print(trimmed, before - after_free, after_free - resident_mb(), len(keeper))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None, reason="needs glibc")
def test_freed_strings_below_live_objects_are_released() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    trimmed, freed, released, _ = done.stdout.split()
    assert trimmed == "True"
    assert float(freed) < 30  # glibc keeps freed memory that lies below live objects ...
    assert float(released) > 60  # ... until it is trimmed
