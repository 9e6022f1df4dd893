"""Pure Numba kernels: arrays in, arrays out.

No I/O, no classes, no imports from ``ai_trading``. Every kernel is compiled with
``cache=True`` so the second start of the CLI does not recompile, never modifies its
inputs, writes into preallocated outputs and reports bad data through status codes.
The typed, validating wrappers users call live in ``ai_trading``.
"""
