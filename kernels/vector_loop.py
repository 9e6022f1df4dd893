"""Compiler options for kernels whose loops over symbols run in SIMD lanes.

Numba passes each array to LLVM as a bare data pointer, so LLVM must assume that any two
arrays may overlap. For a loop that writes some arrays and reads others it then either
emits run-time overlap checks before every entry (dozens of pairs for the portfolio
loops, paid on every bar) or gives up and stays scalar. Kernels compiled with
:data:`VECTOR_LOOP` declare their array arguments ``noalias`` instead.

Contract: an array a ``VECTOR_LOOP`` kernel writes is never passed to it a second time
or overlapping another of its arguments. The wrappers allocate every output and scratch
array themselves; inputs may be shared freely as long as they are only read.
"""

from __future__ import annotations

from numba.core.compiler import Compiler


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
