"""A hint for compiled kernels: fetch an array element's cache line before it is read.

`prefetch` compiles to one prefetch instruction (LLVM's ``llvm.prefetch``): it never
faults, changes no value and costs no wait; a later read of the same line finds it in
the cache instead of waiting for memory. The kernels call it where they know which
memory the next steps will read long before they read it (`tradeloom.core.quiet`).

It is a numba intrinsic, not a `tradeloom.kernels.jit` kernel; this module names that module
so that its source is part of the kernels' cache stamp (`tradeloom.kernels.jit.package_stamp`)
and editing it recompiles the kernels that use it. The intrinsic is declared to numba when
numba is imported for a kernel (`tradeloom.kernels.jit.with_numba`): a small run whose
kernels all run as Python (`tradeloom.kernels.first_run`) imports no numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from tradeloom.kernels.jit import with_numba

__all__ = ["prefetch"]


def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:
    """Type ``prefetch(array, index)`` (None: not for these types) and build its code."""
    from llvmlite import ir
    from numba.core import cgutils, types

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        if isinstance(idxty, types.BaseTuple):
            indices = cgutils.unpack_tuple(builder, args[1], len(idxty))
        else:
            indices = [args[1]]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, indices, wraparound=False)
        i32 = ir.IntType(32)
        byte = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        fnty = ir.FunctionType(ir.VoidType(), [byte.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read (0), keep in every cache level (3), data cache (1)
        builder.call(fn, [byte, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    if not isinstance(array, types.Array):
        return None
    if isinstance(index, types.BaseTuple):
        parts: Any = index  # typed as numba's types, iterable
        if len(parts) != array.ndim or not all(isinstance(t, types.Integer) for t in parts):
            return None
    elif not (isinstance(index, types.Integer) and array.ndim == 1):
        return None
    return types.void(array, index), codegen


def prefetch(array: Any, index: Any) -> None:
    """``prefetch(array, index)``: fetch the cache line of ``array[index]`` (an int, or a
    tuple of ints, one per dimension), for reading. The index is not checked (nor
    wrapped): the caller keeps it inside the array.

    Called as Python (a kernel's Python form, `tradeloom.kernels.jit.interpret`) it does
    nothing, which is all it does to the numbers compiled.
    """


def _declare() -> None:
    """Declare `prefetch`'s compiled form to numba (`tradeloom.kernels.jit.with_numba`)."""
    global _fetch
    from numba.extending import intrinsic, overload

    _fetch = cast(Callable[[Any, Any], None], intrinsic(_prefetch))

    @overload(prefetch)
    def _prefetch_compiled(array: Any, index: Any) -> Any:
        def fetch(array: Any, index: Any) -> None:
            _fetch(array, index)

        return fetch


_fetch: Callable[[Any, Any], None]


with_numba(_declare)
