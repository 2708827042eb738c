"""Fast CPU backend: numba kernels over numpy views of contiguous float32 tensors.

Every kernel computes squared distances in the written order of :mod:`pointsd.ops.reference`
(``d = a - b``, then ``dx*dx + dy*dy + dz*dz`` left to right; numba does not contract to fused
multiply-add without ``fastmath``), so indices are identical to the reference, ties included:
FPS keeps the first maximum (lowest index); KNN / three_nn keep a list sorted by
``(distance, index)``, a later point replacing the k-th only when strictly closer.
Distances are computed a row at a time over coordinate columns (x, y, z arrays), which LLVM
vectorises; selections then run over the row. FPS skips the blocks of points a new center cannot
change (:func:`_fps_one`, exact by float monotonicity) and takes its arg-max with integer reductions
over the distances' bit patterns (:func:`_max_bits`), which LLVM vectorises without ``fastmath``.
Inputs reach these functions already validated, cast to float32 and made contiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_F32_INF = np.float32(np.inf)


@numba.njit(cache=True, inline="always")
def _max_bits(bits: np.ndarray) -> np.int32:
    """``max(bits)`` of an int32 array: an integer reduction, which LLVM vectorises (a float one
    it vectorises only under fastmath). Distances are ``>= +0`` or the padding ``-1``, and such
    float32 values compare as their bit patterns read as int32, so this is the float maximum."""
    m = _I32_MIN
    for j in range(bits.shape[0]):
        m = max(m, bits[j])
    return m


# FPS blocks of 64 points (four 16-lane vectors), grid cells of about 8 points. Serial driver, B = 32,
# this 2-core AVX-512 CPU, 1024→64 / 2048→128 / 8192→1024: 0.40 / 0.93 / 10.2 ms with blocks of 64 vs
# 0.44 / 1.22 / 13.4 (32), 0.43 / 1.02 / 10.4 (128) and 0.43 / 1.13 / 14.6 (the previous layout: blocks
# of 256, a block's coordinates and distances in separate arrays); cells of 2 to 64 points no better.
FPS_BLOCK = 64
_WORD = 64  # blocks per candidate mask (one uint64; the last mask of a cloud may hold fewer)
CELL_POINTS = 8
_F32_NEG = np.float32(-1.0)
_F32_ZERO = np.float32(0.0)
_I32_MAX = np.int32(2**31 - 1)
_I32_MIN = np.int32(-(2**31))
_MAGNITUDE = np.int32(0x7FFFFFFF)


@intrinsic
def _f32_bits(typingctx: Any, x: types.Type) -> Any:
    """The bits of a float32 read as an int32 (an LLVM bitcast: no instruction, vectorisable)."""
    if x != types.float32:
        return None
    return types.int32(types.float32), lambda context, builder, sig, args: builder.bitcast(args[0], ir.IntType(32))


@intrinsic
def _bits_f32(typingctx: Any, x: types.Type) -> Any:
    """The float32 whose bits are the int32 ``x``: the inverse of :func:`_f32_bits`."""
    if x != types.int32:
        return None
    return types.float32(types.int32), lambda context, builder, sig, args: builder.bitcast(args[0], ir.FloatType())


@intrinsic
def _cttz(typingctx: Any, x: types.Type) -> Any:
    """The index of the lowest set bit of a uint64 ``x != 0`` (``llvm.cttz``: one instruction)."""
    if x != types.uint64:
        return None
    return types.uint64(types.uint64), lambda context, builder, sig, args: builder.cttz(
        args[0], ir.Constant(ir.IntType(1), 1))


@numba.njit(cache=True, inline="always")
def _ordered(bits: np.int32) -> np.int32:
    """float32 bits → an int32 with the floats' order (non-NaN), and back: the map is its own
    inverse (negative floats have their magnitude bits flipped)."""
    return np.int32(bits ^ ((bits >> 31) & _MAGNITUDE))


@numba.njit(cache=True, inline="always")
def _bounds(v: np.ndarray) -> tuple[np.float32, np.float32]:
    """``(min(v), max(v))`` of a float32 array by integer reductions over :func:`_ordered` keys,
    which LLVM vectorises (float ones only under fastmath)."""
    lo, hi = _I32_MAX, _I32_MIN
    for j in range(v.shape[0]):
        k = _ordered(_f32_bits(v[j]))
        lo = min(lo, k)
        hi = max(hi, k)
    return _bits_f32(_ordered(lo)), _bits_f32(_ordered(hi))


@numba.njit(cache=True, inline="always")
def _spread3(c: np.int32) -> np.int32:
    """Bit ``i`` of ``c < 2**7`` moved to bit ``3 i``: one axis of a Morton code (vectorised)."""
    c = (c | (c << 8)) & 0x0F00F
    c = (c | (c << 4)) & 0xC30C3
    return (c | (c << 2)) & 0x249249


@numba.njit(cache=True, inline="always")
def _cell_keys(cols: np.ndarray) -> tuple[np.ndarray, int]:
    """Morton codes of the grid cells of ``cols (3,N)`` (x, y, z rows): ``(key (N,) uint32, cells)``
    (unsigned, so that indexing by a key needs no negative-index wrap-around).

    The grid spans the cloud's bounds with ``2**bits`` cells per axis, about ``CELL_POINTS``
    points per cell; ``cells = 8**bits``."""
    N = cols.shape[1]
    bits = max(1, min(7, int(np.ceil(np.log2(max(N // CELL_POINTS, 2)) / 3.0))))
    top = np.int32((1 << bits) - 1)
    key = np.zeros(N, np.int32)
    for a in range(3):
        v = cols[a]
        lo, hi = _bounds(v)
        scale = np.float32(top + 1) / (hi - lo) if hi > lo else _F32_ZERO
        for j in range(N):
            key[j] |= _spread3(min(np.int32((v[j] - lo) * scale), top)) << a
    return key.view(np.uint32), 1 << (3 * bits)


_U1 = np.uint32(1)
_U64_1 = np.uint64(1)


@numba.njit(cache=True, inline="always")
def _cell_order(pts: np.ndarray, ids: np.ndarray, blk: np.ndarray) -> None:
    """Lay ``pts (N,3)`` out in blocks by grid cell (a counting sort by Morton code), so that each
    block of ``FPS_BLOCK`` consecutive points is spatially compact.

    ``ids (nb, FPS_BLOCK)`` int32 gets the original indices; ``blk (nb, 4, FPS_BLOCK)`` float32 the
    block's x, y, z rows and its running distances (``inf``; padding points, copies of the last one to
    fill the last block, ``-1``). One array for coordinates and distances: the block update reads and
    writes at fixed offsets of one base, so LLVM needs no run-time aliasing checks.
    """
    N = pts.shape[0]
    cols = np.empty((3, N), np.float32)
    for j in range(N):
        cols[0, j], cols[1, j], cols[2, j] = pts[j, 0], pts[j, 1], pts[j, 2]
    key, cells = _cell_keys(cols)
    start = np.zeros(cells + 1, np.uint32)
    for j in range(N):
        start[key[j] + _U1] += _U1
    for c in range(1, cells + 1):
        start[c] += start[c - 1]
    order = ids.reshape(-1).view(np.uint32)
    for j in range(N):
        s = start[key[j]]
        start[key[j]] = s + _U1
        order[s] = np.uint32(j)
    for j in range(N, order.shape[0]):
        order[j] = order[N - 1]
    flat = blk.reshape(-1)
    for j in range(order.shape[0]):
        i = order[j]
        at = (j // FPS_BLOCK) * (4 * FPS_BLOCK) + j % FPS_BLOCK
        flat[at] = cols[0, i]
        flat[at + FPS_BLOCK] = cols[1, i]
        flat[at + 2 * FPS_BLOCK] = cols[2, i]
        flat[at + 3 * FPS_BLOCK] = _F32_INF if j < N else _F32_NEG


@numba.njit(cache=True, inline="always")
def _box_gap(lo: np.float32, hi: np.float32, c: np.float32) -> np.float32:
    """``g * g`` for the gap ``g >= 0`` from ``c`` to ``[lo, hi]`` (branch-free: vectorised)."""
    g = lo - c
    g = max(g, c - hi)
    g = max(_F32_ZERO, g)
    return g * g


@numba.njit(cache=True, inline="always")
def _candidates(box: np.ndarray, block_max: np.ndarray, w: int,
                cx: np.float32, cy: np.float32, cz: np.float32) -> np.uint64:
    """Bit ``t`` set for each block ``b = w * _WORD + t`` whose box ``box (6, nb)`` (lo/hi of x, y, z)
    is nearer to ``c`` than the block's largest distance ``block_max (nb,)`` (bits): the blocks ``c``
    may change (vectorised)."""
    mask = np.uint64(0)
    for t in range(min(_WORD, block_max.shape[0] - w * _WORD)):
        b = w * _WORD + t
        gx = _box_gap(box[0, b], box[1, b], cx)
        gy = _box_gap(box[2, b], box[3, b], cy)
        lb = _f32_bits(gx + gy + _box_gap(box[4, b], box[5, b], cz))
        mask |= np.uint64(lb < block_max[b]) << np.uint64(t)
    return mask


@numba.njit(cache=True, inline="always")
def _holders(block_max: np.ndarray, w: int, best: np.int32) -> np.uint64:
    """Bit ``t`` set for each block ``w * _WORD + t`` whose largest distance is ``best`` (vectorised)."""
    mask = np.uint64(0)
    for t in range(min(_WORD, block_max.shape[0] - w * _WORD)):
        mask |= np.uint64(block_max[w * _WORD + t] == best) << np.uint64(t)
    return mask


@numba.njit(cache=True, inline="always")
def _fps_block(blk: np.ndarray, b: int, cx: np.float32, cy: np.float32, cz: np.float32) -> np.int32:
    """Lower block ``b``'s distances by center ``c``; returns the block's maximum as bits, reduced in
    the same pass (see :func:`_max_bits`). Fully unrolled into 16-lane vector operations."""
    m = _I32_MIN
    for j in range(FPS_BLOCK):
        dx = blk[b, 0, j] - cx
        dy = blk[b, 1, j] - cy
        dz = blk[b, 2, j] - cz
        d = min(blk[b, 3, j], dx * dx + dy * dy + dz * dz)
        blk[b, 3, j] = d
        m = max(m, _f32_bits(d))
    return m


@numba.njit(cache=True, inline="always")
def _first_in(blk: np.ndarray, ids: np.ndarray, b: int, best: np.int32) -> np.int32:
    """The lowest original index in block ``b`` whose distance has bits ``best`` (vectorised)."""
    out = _I32_MAX
    for j in range(FPS_BLOCK):
        out = min(out, ids[b, j] if _f32_bits(blk[b, 3, j]) == best else _I32_MAX)
    return out


@numba.njit(cache=True, inline="always")
def _fps_one(pts: np.ndarray, n: int, start: int, out: np.ndarray) -> None:
    """One cloud: ``pts (N,3)`` → ``out (n,)`` int64, the reference's indices with most updates skipped.

    Points are laid out by grid cell (:func:`_cell_order`) in blocks of ``FPS_BLOCK`` with bounding
    boxes. A new center ``c`` cannot lower any distance of a block when the squared distance ``lb``
    from ``c`` to the box is at least the block's largest current distance: the block is skipped
    (:func:`_candidates` gives the others as bits, visited lowest first). This is exact in float32,
    not only in real arithmetic: ``lb`` is computed with the same operations in the same order as the
    point distances, from box coordinates that are themselves point coordinates, and correctly
    rounded ``-``, ``*``, ``+`` are monotonic, so every point's float distance is ``>= lb``. Each block
    keeps its maximum; the arg-max is the lowest original index holding the largest maximum, looked
    up in the blocks holding it only (the reference's choice on ties).
    """
    N = pts.shape[0]
    nb = (N + FPS_BLOCK - 1) // FPS_BLOCK
    nw = (nb + _WORD - 1) // _WORD
    ids = np.empty((nb, FPS_BLOCK), np.int32)
    blk = np.empty((nb, 4, FPS_BLOCK), np.float32)
    _cell_order(pts, ids, blk)
    box = np.empty((6, nb), np.float32)
    for b in range(nb):
        box[0, b], box[1, b] = _bounds(blk[b, 0])
        box[2, b], box[3, b] = _bounds(blk[b, 1])
        box[4, b], box[5, b] = _bounds(blk[b, 2])
    block_max = np.full(nb, _f32_bits(_F32_INF), dtype=np.int32)
    cur = start
    for i in range(n):
        out[i] = cur
        cx, cy, cz = pts[cur, 0], pts[cur, 1], pts[cur, 2]
        for w in range(nw):
            mask = _candidates(box, block_max, w, cx, cy, cz)
            while mask != 0:
                b = w * _WORD + np.int64(_cttz(mask))
                mask &= mask - _U64_1
                block_max[b] = _fps_block(blk, b, cx, cy, cz)
        best = _max_bits(block_max)
        cur = _I32_MAX
        for w in range(nw):
            mask = _holders(block_max, w, best)
            while mask != 0:
                b = w * _WORD + np.int64(_cttz(mask))
                mask &= mask - _U64_1
                cur = min(cur, _first_in(blk, ids, b, best))


@numba.njit(cache=True, inline="always")
def _sq_row(q: np.ndarray, i: int, px: np.ndarray, py: np.ndarray, pz: np.ndarray, row: np.ndarray) -> None:
    """``row[j] = |q_i - p_j|²`` for coordinate columns ``px, py, pz (N,)`` (vectorised)."""
    qx, qy, qz = q[i, 0], q[i, 1], q[i, 2]
    for j in range(row.shape[0]):
        dx = qx - px[j]
        dy = qy - py[j]
        dz = qz - pz[j]
        row[j] = dx * dx + dy * dy + dz * dz


@numba.njit(cache=True, inline="always")
def _k_smallest(row: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """The ``k`` smallest entries of ``row (N,)``, sorted by (value, index).

    Insertion into a sorted list of length ``k``; once full, a candidate enters only when strictly
    smaller than the k-th, and it is placed after equal values, so ties keep the lower index.
    """
    filled = 0
    worst = _F32_INF
    for j in range(row.shape[0]):
        d = row[j]
        if filled < k:
            t = filled
            filled += 1
        elif d < worst:
            t = k - 1
        else:
            continue
        while t > 0 and out_d[t - 1] > d:
            out_d[t] = out_d[t - 1]
            out_i[t] = out_i[t - 1]
            t -= 1
        out_d[t] = d
        out_i[t] = j
        if filled == k:
            worst = out_d[k - 1]


@numba.njit(cache=True, inline="always")
def _knn_cloud(q: np.ndarray, pts: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """All queries of one cloud: ``q (M,3)``, ``pts (N,3)`` → ``out_d, out_i (M,k)``."""
    px = np.ascontiguousarray(pts[:, 0])
    py = np.ascontiguousarray(pts[:, 1])
    pz = np.ascontiguousarray(pts[:, 2])
    row = np.empty(pts.shape[0], dtype=np.float32)
    for m in range(q.shape[0]):
        _sq_row(q, m, px, py, pz, row)
        _k_smallest(row, k, out_d[m], out_i[m])


@numba.njit(cache=True, inline="always")
def _min_value(row: np.ndarray) -> np.float32:
    """``min(row)`` with eight independent accumulators, so the reduction is vectorised."""
    N = row.shape[0]
    N8 = N - N % 8
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = _F32_INF
    for j in range(0, N8, 8):
        m0 = min(m0, row[j])
        m1 = min(m1, row[j + 1])
        m2 = min(m2, row[j + 2])
        m3 = min(m3, row[j + 3])
        m4 = min(m4, row[j + 4])
        m5 = min(m5, row[j + 5])
        m6 = min(m6, row[j + 6])
        m7 = min(m7, row[j + 7])
    m = min(min(min(m0, m1), min(m2, m3)), min(min(m4, m5), min(m6, m7)))
    for j in range(N8, N):
        m = min(m, row[j])
    return m


@numba.njit(cache=True, inline="always")
def _chamfer_one(x: np.ndarray, y: np.ndarray, d1: np.ndarray, i1: np.ndarray, d2: np.ndarray, i2: np.ndarray) -> None:
    """One pair of clouds, both directions from one distance row per point of ``x``.

    ``x (N,3)``, ``y (M,3)`` → ``d1, i1 (N,)``, ``d2, i2 (M,)``; the first minimum wins.
    """
    M = y.shape[0]
    px = np.ascontiguousarray(y[:, 0])
    py = np.ascontiguousarray(y[:, 1])
    pz = np.ascontiguousarray(y[:, 2])
    row = np.empty(M, dtype=np.float32)
    d2[:] = _F32_INF
    i2[:] = 0
    for i in range(x.shape[0]):
        _sq_row(x, i, px, py, pz, row)
        for j in range(M):
            closer = row[j] < d2[j]
            i2[j] = i if closer else i2[j]
            d2[j] = row[j] if closer else d2[j]
        best = _min_value(row)
        j = 0
        while row[j] != best:
            j += 1
        d1[i] = best
        i1[i] = j


@numba.njit(cache=True, inline="always")
def _interpolate_one(f: np.ndarray, idx: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    """One channel: ``f (m,)``, ``idx (n,3)`` int64, ``weight (n,3)`` → ``out (n,)``."""
    for p in range(idx.shape[0]):
        out[p] = f[idx[p, 0]] * weight[p, 0] + f[idx[p, 1]] * weight[p, 1] + f[idx[p, 2]] * weight[p, 2]


# Each kernel has a serial and a parallel driver (distinct functions, so numba's on-disk cache
# keeps both). Starting the threads costs ~0.1 ms on an idle machine but >10 ms on a loaded one,
# so they start only above 2**23 distance evaluations (tens of ms of serial work).
PARALLEL_MIN_WORK = 1 << 23


@numba.njit(cache=True)
def _fps_serial(xyz: np.ndarray, n: int, start: int, out: np.ndarray) -> None:
    for b in range(xyz.shape[0]):
        _fps_one(xyz[b], n, start, out[b])


@numba.njit(cache=True, parallel=True)
def _fps_parallel(xyz: np.ndarray, n: int, start: int, out: np.ndarray) -> None:
    for b in numba.prange(xyz.shape[0]):
        _fps_one(xyz[b], n, start, out[b])


@numba.njit(cache=True)
def _knn_serial(query: np.ndarray, points: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    for b in range(query.shape[0]):
        _knn_cloud(query[b], points[b], k, out_d[b], out_i[b])


@numba.njit(cache=True, parallel=True)
def _knn_parallel(query: np.ndarray, points: np.ndarray, k: int, out_d: np.ndarray, out_i: np.ndarray) -> None:
    for b in numba.prange(query.shape[0]):
        _knn_cloud(query[b], points[b], k, out_d[b], out_i[b])


@numba.njit(cache=True)
def _chamfer_serial(x: np.ndarray, y: np.ndarray, d1: np.ndarray, i1: np.ndarray, d2: np.ndarray, i2: np.ndarray) -> None:
    for b in range(x.shape[0]):
        _chamfer_one(x[b], y[b], d1[b], i1[b], d2[b], i2[b])


@numba.njit(cache=True, parallel=True)
def _chamfer_parallel(x: np.ndarray, y: np.ndarray, d1: np.ndarray, i1: np.ndarray, d2: np.ndarray, i2: np.ndarray) -> None:
    for b in numba.prange(x.shape[0]):
        _chamfer_one(x[b], y[b], d1[b], i1[b], d2[b], i2[b])


@numba.njit(cache=True)
def _interpolate_serial(features: np.ndarray, idx: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    C = features.shape[1]
    for r in range(features.shape[0] * C):
        b, c = r // C, r % C
        _interpolate_one(features[b, c], idx[b], weight[b], out[b, c])


@numba.njit(cache=True, parallel=True)
def _interpolate_parallel(features: np.ndarray, idx: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    C = features.shape[1]
    for r in numba.prange(features.shape[0] * C):
        b, c = r // C, r % C
        _interpolate_one(features[b, c], idx[b], weight[b], out[b, c])


def _run(serial: Callable, parallel: Callable, work: int, *args: Any) -> None:
    """Run ``parallel(*args)`` when ``work`` (distance evaluations) pays for starting threads and this
    process may use more than one, else ``serial(*args)``.

    The thread count is torch's intra-op one (``OMP_NUM_THREADS``, which a Snakemake rule's ``threads``
    sets, or ``torch.set_num_threads``): a one-thread job stays on one core. Numba's OpenMP pool shares
    its libgomp settings with torch's, so a parallel region could change torch's thread count (it
    raised a one-thread job's to 2 before): the count is put back if it moved.
    """
    threads = torch.get_num_threads()
    if work < PARALLEL_MIN_WORK or threads < 2:
        serial(*args)
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    parallel(*args)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def furthest_point_sample(xyz: torch.Tensor, n: int, start: int) -> torch.Tensor:
    """``xyz (B,N,3)`` float32 contiguous → ``(B,n)`` int64."""
    B, N, _ = xyz.shape
    out = torch.empty(B, n, dtype=torch.long)
    _run(_fps_serial, _fps_parallel, B * N * n, xyz.numpy(), n, start, out.numpy())
    return out


def knn_with_dist(query: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``query (B,M,3)``, ``points (B,N,3)`` → ``(sq. dist (B,M,k) float32, idx (B,M,k) int64)``."""
    B, M, _ = query.shape
    dist = torch.empty(B, M, k, dtype=torch.float32)
    idx = torch.empty(B, M, k, dtype=torch.long)
    _run(_knn_serial, _knn_parallel, B * M * points.shape[1], query.numpy(), points.numpy(), k, dist.numpy(),
         idx.numpy())
    return dist, idx


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``unknown (B,n,3)``, ``known (B,m,3)`` → ``(dist (B,n,3) euclidean, idx (B,n,3) int64)``."""
    dist2, idx = knn_with_dist(unknown, known, 3)
    return dist2.clamp_min_(0).sqrt_(), idx


def chamfer_nearest(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x (B,N,3)``, ``y (B,M,3)`` → ``d1 (B,N), i1 (B,N) int64, d2 (B,M), i2 (B,M) int64``."""
    B, N, _ = x.shape
    M = y.shape[1]
    d1, d2 = torch.empty(B, N), torch.empty(B, M)
    i1 = torch.empty(B, N, dtype=torch.long)
    i2 = torch.empty(B, M, dtype=torch.long)
    _run(_chamfer_serial, _chamfer_parallel, B * N * M, x.numpy(), y.numpy(), d1.numpy(), i1.numpy(), d2.numpy(),
         i2.numpy())
    return d1, i1, d2, i2


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``features (B,C,m)`` float32, ``idx (B,n,3)`` int64, ``weight (B,n,3)`` float32 → ``(B,C,n)``."""
    B, C, _ = features.shape
    out = torch.empty(B, C, idx.shape[1], dtype=torch.float32)
    _run(_interpolate_serial, _interpolate_parallel, B * C * idx.shape[1] * 3, features.numpy(), idx.numpy(),
         weight.numpy(), out.numpy())
    return out
