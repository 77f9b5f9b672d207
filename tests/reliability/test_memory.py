"""A server's large blocks go back to the system when freed (serving.fix_mmap_threshold, glibc only).

Each case runs in a fresh interpreter, so that the allocator starts as a server's does.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROGRAM = """
import ctypes, sys
from deconfliction.serving import fix_mmap_threshold

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "held":
    assert fix_mmap_threshold()
freed = bytearray(8 << 20)  # a mapped block freed: glibc, left alone, raises its threshold to its size
del freed
before = libc.mallinfo2().hblkhd
kept = bytearray(1 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


def _mapped_after_a_large_free(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, how], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc 2.33 or later only")
def test_a_megabyte_block_gets_its_own_mapping_even_after_a_larger_one_was_freed() -> None:
    assert _mapped_after_a_large_free("held") >= 1 << 20
    # Left alone, glibc would have put it in the heap, where its hole outlives it: what the fix prevents.
    assert _mapped_after_a_large_free("default") == 0
