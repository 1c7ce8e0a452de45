"""Out-of-line calls between Numba kernels: compile a big routine once, call it by address.

Why: when one jitted function calls another, Numba links the callee's whole LLVM module into
the caller's and optimises and compiles the result again, at every level. A parallel kernel
has four levels of its own (the prange body, its gufunc wrapper, the parallel wrapper, the
kernel), so the matmul block routine under `gemm_parallel` went through LLVM five times,
and again under each attention kernel: most of the 32 s a cold tiny training step spent
compiling (measured on Zen 4, one core compiling). Called through a function pointer
instead, the routine is compiled once, as a `numba.cfunc`, and each caller holds only an
indirect call.

An `Entry` is such a routine: a plain Python function and the types of its arguments,
compiled per dtype at first use and cached on disk like every kernel. Python hands a kernel
the routine's address (`Entry.address(dtype)`) as an ordinary int64 argument, so the
kernel's own cache entry stays valid in the next process (a baked-in address would not),
and the kernel calls it with the Entry's `caller()` intrinsic, which checks and converts
each argument to the declared type at compile time. Arrays and tuples travel in Numba's own
representation (the same values a jitted call passes), so the routine's body is ordinary
kernel code.
"""

import functools

import numpy as np
from llvmlite import ir
from numba import cfunc, types
from numba.core.errors import TypingError
from numba.core.typeconv import Conversion
from numba.extending import intrinsic

from ops.numba_config import FASTMATH


def _kinds(dtype):
    """Argument kinds of an Entry's spec, for float32 or float64 kernels."""
    scalar = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    flat = types.Array(scalar, 1, "C")
    return {"a": flat,                          # a flat, C-ordered array of the dtype
            "i": types.int64,
            "f": scalar,
            "b": types.boolean,
            "T": types.UniTuple(types.int64, 3),  # matmul block sizes (MC, KC, NC)
            "B": types.UniTuple(flat, 4)}         # matmul scratch (see matmul_cpu._buffers)


class Entry:
    """A Python function compiled as a routine called by address, once per dtype.

    `spec` names its arguments' kinds in order (see _kinds); the first array argument
    decides the dtype. The routine returns nothing.
    """

    def __init__(self, py_func, spec):
        code = py_func.__code__
        if len(spec) != code.co_argcount or set(spec) - set(_kinds(np.float32)):
            raise ValueError(f"{py_func.__name__}: spec {spec!r} does not fit "
                             f"{code.co_varnames[:code.co_argcount]}")
        self.py_func, self.spec, self.__name__ = py_func, spec, py_func.__name__

    def signature(self, dtype):
        kinds = _kinds(dtype)
        return types.void(*(kinds[c] for c in self.spec))

    @functools.cache  # noqa: B019  (Entries are module-level and live as long as the process)
    def compiled(self, dtype):
        """The numba.cfunc for this dtype (float32 or float64), compiled or loaded."""
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"{self.__name__}: float32 or float64 only, not {np.dtype(dtype)}")
        return cfunc(self.signature(dtype), cache=True, fastmath=FASTMATH,
                     error_model="numpy")(self.py_func)

    def address(self, dtype):
        """The routine's address for this dtype: pass it to the kernels that call it."""
        return self.compiled(np.dtype(dtype).type).address

    def caller(self):
        """An intrinsic `call(address, *args)` for kernels: calls this routine at `address`
        with args converted to its declared types (a TypingError names the routine and the
        argument when one does not convert safely, e.g. a float for an int64)."""
        entry = self

        @intrinsic
        def call(typingctx, address, *args):
            if args and isinstance(args[0], types.StarArgTuple):
                args = args[0].types
            declared = entry._declared(typingctx, args)
            sig = types.none(address, types.StarArgTuple(args))

            def codegen(context, builder, signature, llargs):
                values = [context.cast(builder, builder.extract_value(llargs[1], i), got, want)
                          for i, (got, want) in enumerate(zip(args, declared))]
                fnty = ir.FunctionType(context.get_value_type(types.none),
                                       [context.get_value_type(t) for t in declared])
                builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), values)
                return context.get_dummy_value()
            return sig, codegen
        return call

    def _declared(self, typingctx, args):
        """The declared argument types for a call with `args`, checked against them."""
        dtype = next((a.dtype for a in args if isinstance(a, types.Array)), None)
        if len(args) != len(self.spec) or dtype not in (types.float32, types.float64):
            raise TypingError(f"{self.__name__}: called with {len(args)} arguments "
                              f"({dtype} arrays), declared {len(self.spec)} (float arrays)")
        declared = self.signature(str(dtype)).args
        for n, (got, want) in enumerate(zip(args, declared)):
            conversion = typingctx.can_convert(got, want)
            if got != want and (conversion is None or conversion > Conversion.safe):
                raise TypingError(f"{self.__name__}: argument {n} is {got}, declared {want}")
        return declared
