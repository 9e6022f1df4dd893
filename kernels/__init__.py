"""Pure Numba kernels: arrays in, arrays out.

No I/O, no classes, no imports from ``ai_trading``. Every kernel is compiled with
``cache=True`` so the second start of the CLI does not recompile, never modifies its
inputs, writes into preallocated outputs and reports bad data through status codes.
The typed, validating wrappers users call live in ``ai_trading``.
"""

import llvmlite.binding

from kernels import numba_cache

# Cached kernels are stamped with all kernel sources, not just their own file (see
# numba_cache): installed before any kernel module is imported and decorated.
numba_cache.install()

# Loops over symbols have short trip counts (tens to hundreds of symbols). Where they run
# 8 lanes wide (AVX-512 where LLVM prefers 512-bit vectors, as on AMD Zen 5; on Intel it
# keeps to 4 lanes of 256 bits), the 0-7 symbols left over would run one by one, at up
# to a tenth of the loop's time: LLVM finishes them 4 lanes wide instead. Compiler
# options are per process and apply to the kernels compiled after this import, which
# all of ours are.
llvmlite.binding.set_option("ai_trading", "-epilogue-vectorization-force-VF=4")
