"""Pure Numba kernels: arrays in, arrays out.

No I/O, no classes, no imports from ``ai_trading``. Every kernel is compiled with
``cache=True`` so the second start of the CLI does not recompile, never modifies its
inputs, writes into preallocated outputs and reports bad data through status codes.
The typed, validating wrappers users call live in ``ai_trading``.
"""

import llvmlite.binding

# The per-bar portfolio loop reads and writes some twenty arrays. Numba cannot tell LLVM
# that they do not overlap, so the vectoriser checks at run time; its default budget for
# those checks (8) would leave the loop scalar. Compiler options are per process and
# apply to kernels compiled after this import, which all of ours are.
llvmlite.binding.set_option("ai_trading", "-runtime-memory-check-threshold=256")
llvmlite.binding.set_option("ai_trading", "-vectorize-memory-check-threshold=1024")
