"""Shared launch settings for the point kernels."""

from __future__ import annotations

import triton

# Squared distances must round exactly like the torch reference (separate multiply and add), so
# that neighbour orderings and ties match it bit for bit: no fused multiply-add contraction.
EXACT = {"enable_fp_fusion": False}


def block(n: int, low: int = 16, high: int = 1024) -> int:
    """A power-of-two block size covering ``n``, clipped to ``[low, high]``."""
    return max(low, min(high, triton.next_power_of_2(max(n, 1))))
