"""Compiler options for kernels whose loops over symbols run in SIMD lanes.

Numba passes each array to LLVM as a bare data pointer, so LLVM must assume that any two
arrays may overlap. For a loop that writes some arrays and reads others it then either
emits run-time overlap checks before every entry (dozens of pairs for the portfolio
loops, paid on every bar) or gives up and stays scalar. Kernels compiled with
:data:`VECTOR_LOOP` declare their array arguments ``noalias`` instead.

Contract: an array a ``VECTOR_LOOP`` kernel writes is never passed to it a second time
or overlapping another of its arguments. The wrappers allocate every output and scratch
array themselves; inputs may be shared freely as long as they are only read.

Inside such loops, :func:`choose` picks between two computed values without a branch;
:func:`multiply_add_lanes` updates a short run of consecutive elements in one vector
operation; :func:`prefetch` asks for an input's cache line ahead of its use.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import cgutils, types
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


@intrinsic
def multiply_add(typingctx: Any, a: types.Type, b: types.Type, c: types.Type) -> tuple | None:
    """``a * b + c`` rounded once (LLVM ``fma``), whatever the contraction flags: code
    that must round exactly like :func:`multiply_add_lanes` uses it."""
    if not a == b == c == types.float64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: tuple) -> Any:
        double = ir.DoubleType()
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(double, [double] * 3), "llvm.fma.f64")
        return builder.call(fma, list(args))

    return types.float64(a, b, c), codegen


@intrinsic
def multiply_add_lanes(typingctx: Any, array: types.Type, offset: types.Type, factor: types.Type, addends: types.Type) -> tuple | None:
    """``array[offset + i] = array[offset + i] * factor + addends[i]`` for every ``i`` of
    the tuple ``addends``, as one vector ``fma``: one load, one multiply-add and one
    store for the whole run of elements, each rounded as :func:`multiply_add` rounds it.

    Numba compiles such straight-line code to one scalar operation per element (it keeps
    LLVM's SLP vectoriser, which would merge them, switched off), and a kernel that
    updates a short row at a random place per item spends its time on them. The caller
    keeps ``offset + len(addends)`` within ``array`` (C-contiguous, one dimension).
    """
    if not (
        isinstance(array, types.Array) and array.dtype == types.float64 and array.ndim == 1 and array.layout == "C"
        and isinstance(offset, types.Integer) and factor == types.float64
        and isinstance(addends, types.UniTuple) and addends.dtype == types.float64
    ):  # fmt: skip
        return None
    lanes = addends.count

    def codegen(context: Any, builder: Any, signature: Any, args: tuple) -> Any:
        data, start, scale, values = args
        vector = ir.VectorType(ir.DoubleType(), lanes)
        addend = ir.Constant(vector, ir.Undefined)
        factors = ir.Constant(vector, ir.Undefined)
        for i in range(lanes):
            lane = ir.Constant(ir.IntType(32), i)
            addend = builder.insert_element(addend, builder.extract_value(values, i), lane)
            factors = builder.insert_element(factors, scale, lane)
        base = context.make_array(signature.args[0])(context, builder, data).data
        pointer = builder.bitcast(builder.gep(base, [start]), vector.as_pointer())
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{lanes}f64")
        builder.store(builder.call(fma, [builder.load(pointer, align=8), factors, addend]), pointer, align=8)
        return context.get_dummy_value()

    return types.void(array, offset, factor, addends), codegen


@intrinsic
def prefetch(typingctx: Any, array: types.Type, index: types.Type) -> tuple | None:
    """Start loading the cache line of ``array[index]`` into the caches (LLVM ``prefetch``,
    a hint: nothing is read into a register, and an ``index`` past the end is harmless,
    since a prefetch never faults).

    For a loop that streams several input arrays while it updates a state about as large
    as the level-1 cache: :func:`kernels.cost_model.ewma_update` over 500 symbols ran
    about 15% faster asking for its inputs a hundred-odd items ahead than leaving them to
    the hardware prefetchers."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C" and isinstance(index, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: tuple) -> Any:
        data, position = args
        base = context.make_array(signature.args[0])(context, builder, data).data
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        # read (0), keep in all cache levels (locality 3), data cache (1)
        builder.call(hint, [builder.bitcast(builder.gep(base, [position]), byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
