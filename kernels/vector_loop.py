"""Compiler options for kernels whose loops over symbols run in SIMD lanes.

Numba passes each array to LLVM as a bare data pointer, so LLVM must assume that any two
arrays may overlap. For a loop that writes some arrays and reads others it then either
emits run-time overlap checks before every entry (dozens of pairs for the portfolio
loops, paid on every bar) or gives up and stays scalar. Kernels compiled with
:data:`VECTOR_LOOP` declare their array arguments ``noalias`` instead.

Contract: an array a ``VECTOR_LOOP`` kernel writes is never passed to it a second time
or overlapping another of its arguments. The wrappers allocate every output and scratch
array themselves; inputs may be shared freely as long as they are only read.

Inside such loops, :func:`choose` picks between two computed values without a branch.
"""

from __future__ import annotations

from typing import Any

from numba.core import types
from numba.core.compiler import Compiler
from numba.extending import intrinsic


class NoAliasCompiler(Compiler):
    """Numba's default pipeline with its ``noalias`` flag set, which marks every pointer
    argument of the compiled function ``noalias`` for LLVM (Numba's own parallel
    backend sets the same flag for the loop bodies it outlines)."""

    def define_pipelines(self) -> list:
        self.state.flags.noalias = True
        return super().define_pipelines()


# No Python error checks (inputs are validated by the wrappers), no reference counting
# (arrays are owned by the caller), per-bar sums reassociated into vector lanes, and
# array arguments that do not alias.
VECTOR_LOOP = {"error_model": "numpy", "fastmath": {"contract", "reassoc"}, "_nrt": False, "pipeline_class": NoAliasCompiler}


@intrinsic
def choose(typingctx: Any, condition: types.Type, value: types.Type, otherwise: types.Type) -> tuple | None:
    """``value if condition else otherwise`` as one LLVM ``select``, both values computed.

    Written inline, or in an inlined helper, ``x if c else y`` is a branch. LLVM merges
    the branches of a loop that test the same condition into one, sinks the loads and
    stores that only one side needs into it, and a loop over symbols with loads or
    stores under a condition either stays scalar on AVX2 or runs masked ones, which are
    slow on AMD CPUs. A select leaves nothing to merge or sink.
    """
    if not (isinstance(condition, types.Boolean) and value == otherwise == types.float64):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: tuple) -> Any:
        return builder.select(*args)

    return types.float64(condition, value, otherwise), codegen
