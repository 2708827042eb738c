"""Compile every point kernel for an H100 (sm_90) down to a cubin, without a GPU.

Run as a script (it must import the kernels with ``TRITON_INTERPRET`` unset). For each kernel it
compiles the plain signature and, with ``--all``, for every integer argument the launch-time
specialisation of the value 1 (Triton turns an int argument equal to 1 into a constexpr). It
checks that the distance kernels contain no fused multiply-add (which would round distances
differently from the torch reference), and only ``.rn`` multiplies and adds (ptxas never contracts
those into FMA in the machine code). Prints one line per compiled variant.
"""

from __future__ import annotations

import os
import re
import sys

os.environ.pop("TRITON_INTERPRET", None)

import triton
from pointsd_kernels import chamfer, fps, interpolate, knn
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

# kernel, signature (argument → type), constexpr values, whether FMA must be absent
KERNELS = [
    (fps._fps_kernel, {"xyz_ptr": "*fp32", "dist_ptr": "*fp32", "out_ptr": "*i64", "N": "i32", "n": "i32",
                       "start": "i32"}, {"BLOCK": 1024}, True),
    (fps._fps_onchip_kernel, {"xyz_ptr": "*fp32", "out_ptr": "*i64", "N": "i32", "n": "i32", "start": "i32"},
     {"BLOCK": 8192}, True),
    (knn._knn_select_kernel, {"q_ptr": "*fp32", "p_ptr": "*fp32", "dist_ptr": "*fp32", "idx_ptr": "*i64",
                              "M": "i32", "N": "i32", "k": "i32"},
     {"BLOCK_M": 32, "BLOCK_N": 128, "NO_INDEX": 2**31 - 1}, True),
    (knn._knn_sorted_kernel, {"q_ptr": "*fp32", "p_ptr": "*fp32", "dist_ptr": "*fp32", "idx_ptr": "*i64",
                              "M": "i32", "N": "i32", "k": "i32"}, {"BLOCK_M": 16, "T": 32, "NO_KEY": 2**63 - 1}, True),
    (chamfer._nearest_kernel, {"a_ptr": "*fp32", "b_ptr": "*fp32", "dist_ptr": "*fp32", "idx_ptr": "*i64",
                               "NA": "i32", "NB": "i32"}, {"BLOCK_A": 64, "BLOCK_B": 128}, True),
    (interpolate._three_nn_kernel, {"u_ptr": "*fp32", "k_ptr": "*fp32", "dist_ptr": "*fp32", "idx_ptr": "*i64",
                                    "n": "i32", "m": "i32"}, {"BLOCK_U": 64, "BLOCK_K": 128,
                                                              "NO_INDEX": 2**31 - 1}, True),
    (interpolate._three_interpolate_kernel, {"f_ptr": "*fp32", "idx_ptr": "*i64", "w_ptr": "*fp32",
                                             "out_ptr": "*fp32", "C": "i32", "m": "i32", "n": "i32"},
     {"BLOCK_C": 32, "BLOCK_N": 64}, False),
]


def compile_variant(fn, signature: dict, constexprs: dict, one: str | None) -> str:
    """PTX of ``fn`` for sm_90, with int argument ``one`` specialised to the constant 1."""
    sig = dict(signature, **{name: "constexpr" for name in constexprs})
    values = dict(constexprs)
    if one is not None:
        sig[one] = "constexpr"
        values[one] = 1
    src = ASTSource(fn=fn, signature=sig, constexprs={(list(sig).index(k),): v for k, v in values.items()})
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": False})
    assert compiled.asm["cubin"], "no cubin produced"
    return compiled.asm["ptx"]


def main(argv: list[str]) -> int:
    for fn, signature, constexprs, exact in KERNELS:
        ones = [name for name, kind in signature.items() if kind == "i32"] if "--all" in argv else []
        for one in [None, *ones]:
            ptx = compile_variant(fn, signature, constexprs, one)
            if exact and "fma.rn.f32" in ptx:
                print(f"FAIL {fn.__name__} {one}: fused multiply-add in an exact kernel")
                return 1
            if exact and re.search(r"\b(mul|add|sub)\.f32", ptx):
                print(f"FAIL {fn.__name__} {one}: float op without .rn, which ptxas may contract to FMA")
                return 1
            print(f"ok {fn.__name__} {'plain' if one is None else one + '=1'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
