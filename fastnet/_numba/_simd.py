r"""Explicit-SIMD building blocks of the per-sample kernels, as Numba intrinsics.

Numba's loop vectoriser handles the short rows of a small network badly: a
row of 50 float32 weights is shorter than its 64-element unrolled vector
body, so the work falls to an 8-wide epilogue plus scalar code, with runtime
alias checks on every row; and Numba disables LLVM's SLP vectoriser.  These
intrinsics emit the loops directly in LLVM IR with vectors of one 64-byte
register (16 float32 or 8 float64), masked loads and stores for the ends of
rows, fused multiply-adds and accumulators held in registers.  LLVM
legalises the vector types on any target (AVX2, NEON, ...): the code is
portable, it is only fastest with AVX-512.

Every intrinsic works on 1-D C-contiguous arrays of one float dtype; row
indices come as ``uint32`` arrays (so they are known to be non-negative).
Lanes past the end of a row are never read nor written (masked), so no
intrinsic touches memory outside the rows it is given.

* :func:`compact_nonzero` -- the indices of the nonzero entries of a vector
  (compress-store of a ``!= 0`` mask; NaN counts as nonzero);
* :func:`sparse_affine` -- :math:`z = W_0 + \sum_t v_{i_t} W_{i_t+1}` over
  given row indices;
* :func:`rows_axpy` -- :math:`W_{i_t+1} \mathrel{+}= v_{i_t}\, d` for given
  row indices (the rank-1 gradient update of one sample);
* :func:`row_dots` -- :math:`out_j = W_{j+1}\cdot d` for every row (the error
  term sent to the layer below, before the activation's derivative);
* :func:`compact_union4`, :func:`sparse_affine4`, :func:`rows_axpy4` -- the
  same for four samples at once over the union of their nonzero inputs;
* :func:`sigmoid_into` -- the logistic function, with a vectorised ``exp``.

Note for developers: Numba's on-disk cache of a kernel is invalidated by
changes to the kernel's own file only.  After editing this file (or
``_common.py``), delete ``fastnet/_numba/__pycache__`` so that the kernels of
``network.py`` are recompiled with the new intrinsics.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["compact_nonzero", "compact_union4", "sparse_affine", "sparse_affine4", "rows_axpy",
           "rows_axpy4", "row_dots", "row_dots4", "sigmoid_into"]

_I1 = ir.IntType(1)
_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
#: vectors (of one 64-byte register) per block of a row held in registers: 8 (of the 32
#: AVX-512 registers) covers a 128-float32 / 64-float64 row in one pass over the indices
_BLOCK = 8


class _V:
    """LLVM vector types and intrinsics for one float dtype."""

    def __init__(self, builder, dtype):
        self.b = builder
        mod = builder.module
        if dtype == types.float32:
            self.fty, self.lanes, self.align, sfx = ir.FloatType(), 16, 4, "f32"
        elif dtype == types.float64:
            self.fty, self.lanes, self.align, sfx = ir.DoubleType(), 8, 8, "f64"
        else:  # pragma: no cover - typing refuses other dtypes first
            raise TypeError(dtype)
        L = self.lanes
        self.vty = ir.VectorType(self.fty, L)
        self.mty = ir.VectorType(_I1, L)
        self.ity = ir.VectorType(_I32, L)
        ptr = self.fty.as_pointer()
        self.zero = ir.Constant(self.vty, None)
        self.iota = ir.Constant(self.ity, list(range(L)))
        self._load = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vty, [ptr, _I32, self.mty, self.vty]),
            f"llvm.masked.load.v{L}{sfx}.p0")
        self._store = cgutils.get_or_insert_function(
            mod, ir.FunctionType(ir.VoidType(), [self.vty, ptr, _I32, self.mty]),
            f"llvm.masked.store.v{L}{sfx}.p0")
        self._fma = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.vty, [self.vty] * 3), f"llvm.fma.v{L}{sfx}")
        self._reduce = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.fty, [self.fty, self.vty]),
            f"llvm.vector.reduce.fadd.v{L}{sfx}")
        # compress into a register, then a masked (prefix) store: the memory form of
        # vpcompressd is microcoded and very slow on AMD Zen 4
        self._compress = cgutils.get_or_insert_function(
            mod, ir.FunctionType(self.ity, [self.ity, self.mty, self.ity]),
            f"llvm.experimental.vector.compress.v{L}i32")
        self._istore = cgutils.get_or_insert_function(
            mod, ir.FunctionType(ir.VoidType(), [self.ity, _I32.as_pointer(), _I32, self.mty]),
            f"llvm.masked.store.v{L}i32.p0")
        mint = ir.IntType(L)
        self._ctpop = cgutils.get_or_insert_function(
            mod, ir.FunctionType(mint, [mint]), f"llvm.ctpop.i{L}")
        self.mint = mint

    # masks and scalars
    def mask_below(self, first, limit32):
        """Lanes ``first + lane < limit32`` (``first`` a Python int, ``limit32`` an i32)."""
        b = self.b
        lanes = b.add(self.iota, ir.Constant(self.ity, [first] * self.lanes)) if first else self.iota
        return b.icmp_signed("<", lanes, self.splat_i32(limit32))

    def splat_i32(self, x):
        b = self.b
        v = b.insert_element(ir.Constant(self.ity, ir.Undefined), x, ir.Constant(_I32, 0))
        return b.shuffle_vector(v, ir.Constant(self.ity, ir.Undefined),
                                ir.Constant(self.ity, [0] * self.lanes))

    def splat(self, x):
        b = self.b
        v = b.insert_element(ir.Constant(self.vty, ir.Undefined), x, ir.Constant(_I32, 0))
        return b.shuffle_vector(v, ir.Constant(self.vty, ir.Undefined),
                                ir.Constant(self.ity, [0] * self.lanes))

    # memory and arithmetic
    def load(self, ptr, mask):
        """Load one vector at ``ptr``: plain when ``mask`` is None, else masked."""
        if mask is None:
            vptr = self.b.bitcast(ptr, self.vty.as_pointer())
            return self.b.load(vptr, align=self.align)
        return self.b.call(self._load, [ptr, ir.Constant(_I32, self.align), mask, self.zero])

    def store(self, val, ptr, mask):
        """Store one vector at ``ptr``: plain when ``mask`` is None, else masked."""
        if mask is None:
            vptr = self.b.bitcast(ptr, self.vty.as_pointer())
            self.b.store(val, vptr, align=self.align)
        else:
            self.b.call(self._store, [val, ptr, ir.Constant(_I32, self.align), mask])

    def fma(self, a, x, acc):
        return self.b.call(self._fma, [a, x, acc])

    def hsum(self, v):
        """Horizontal sum (a tree: reassociated)."""
        return self.b.call(self._reduce, [ir.Constant(self.fty, -0.0), v], fastmath=("reassoc",))

    # pieces narrower than a register (the ends of rows), without masks
    def piece_type(self, w):
        return self.fty if w == 1 else ir.VectorType(self.fty, w)

    def piece_load(self, ptr, w):
        return self.b.load(self.b.bitcast(ptr, self.piece_type(w).as_pointer()), align=self.align)

    def piece_store(self, val, ptr, w):
        self.b.store(val, self.b.bitcast(ptr, self.piece_type(w).as_pointer()), align=self.align)

    def piece_splat(self, x, w):
        if w == 1:
            return x
        t = self.piece_type(w)
        v = self.b.insert_element(ir.Constant(t, ir.Undefined), x, ir.Constant(_I32, 0))
        return self.b.shuffle_vector(v, ir.Constant(t, ir.Undefined),
                                     ir.Constant(ir.VectorType(_I32, w), [0] * w))

    def piece_fma(self, a, x, acc, w):
        t = self.piece_type(w)
        sfx = ("f32" if self.lanes == 16 else "f64")
        name = f"llvm.fma.{sfx}" if w == 1 else f"llvm.fma.v{w}{sfx}"
        fn = cgutils.get_or_insert_function(self.b.module, ir.FunctionType(t, [t] * 3), name)
        return self.b.call(fn, [a, x, acc])


def _data(context, builder, ty, val):
    return context.make_array(ty)(context, builder, val).data


def _loop(builder, start, stop, step=1):
    """``for i in range(start, stop, step)`` over i64 values (a context manager giving ``i``)."""
    return cgutils.for_range_slice(builder, start, stop, ir.Constant(_I64, step), _I64)


def _min_i64(builder, a, b):
    return builder.select(builder.icmp_signed("<", a, b), a, b)


def _float_array(ty):
    return (isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C"
            and ty.dtype in (types.float32, types.float64))


def _index_array(ty):
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C" \
        and ty.dtype == types.uint32


def _switch_nvec(builder, V, rem, emit, block=_BLOCK):
    """Branch on the number of vectors (1..block) a block of ``rem`` > 0 elements needs and
    call ``emit(nvec, masks)`` in each branch (only the last vector has a mask)."""
    L = V.lanes
    rem32 = builder.trunc(_min_i64(builder, rem, ir.Constant(_I64, block * L)), _I32)
    # nvec = ceil(rem / L), 1..block
    nvec = builder.udiv(builder.add(rem32, ir.Constant(_I32, L - 1)), ir.Constant(_I32, L))

    def emit_k(k):
        # the first k - 1 vectors of the block are full: only the last one needs a mask
        emit(k, [None] * (k - 1) + [V.mask_below((k - 1) * L, rem32)])

    _switch(builder, nvec, block, emit_k, "nvec")


def _switch(builder, value, kmax, emit, tag):
    """``switch value`` over 1..kmax, calling ``emit(k)`` in each case."""
    fn = builder.function
    done = fn.append_basic_block(f"{tag}.done")
    default = fn.append_basic_block(f"{tag}.default")
    sw = builder.switch(value, default)
    with builder.goto_block(default):
        builder.unreachable()
    for k in range(1, kmax + 1):
        blk = fn.append_basic_block(f"{tag}.{k}")
        sw.add_case(ir.Constant(_I32, k), blk)
        builder.position_at_end(blk)
        emit(k)
        builder.branch(done)
    builder.position_at_end(done)


def _row_ptr(builder, base, o, idx, n, kb):
    """Pointer to ``W[idx + 1, kb]`` of the block ``W`` of width ``n`` starting at ``base + o``."""
    off = builder.add(builder.add(o, builder.mul(builder.add(idx, ir.Constant(_I64, 1)), n)), kb)
    return builder.gep(base, [off])


def _load_index(builder, nz_ptr, t):
    return builder.zext(builder.load(builder.gep(nz_ptr, [t])), _I64)


# ------------------------------------------------------------ code generators
def _compact_codegen(P):
    """Indices of the entries nonzero in any of the P vectors (args: v_0..v_{P-1}, nz)."""

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        vptrs = [_data(context, builder, sig.args[s], args[s]) for s in range(P)]
        nptr = _data(context, builder, sig.args[P], args[P])
        n = context.make_array(sig.args[0])(context, builder, args[0]).nitems
        count = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
        with _loop(builder, ir.Constant(_I64, 0), n, L) as (i, _):
            rem32 = builder.trunc(_min_i64(builder, builder.sub(n, i), ir.Constant(_I64, L)),
                                  _I32)
            inside = V.mask_below(0, rem32)
            nonzero = None
            for vp in vptrs:
                x = V.load(builder.gep(vp, [i]), inside)
                nzs = builder.fcmp_unordered("!=", x, V.zero)
                nonzero = nzs if nonzero is None else builder.or_(nonzero, nzs)
            nonzero = builder.and_(nonzero, inside)
            idx = builder.add(V.iota, V.splat_i32(builder.trunc(i, _I32)))
            c = builder.load(count)
            packed = builder.call(V._compress, [idx, nonzero, ir.Constant(V.ity, None)])
            bits = builder.call(V._ctpop, [builder.bitcast(nonzero, V.mint)])
            prefix = V.mask_below(0, builder.zext(bits, _I32))
            builder.call(V._istore, [packed, builder.gep(nptr, [c]), ir.Constant(_I32, 4), prefix])
            builder.store(builder.add(c, builder.zext(bits, _I64)), count)
        return builder.load(count)

    return codegen


def _affine_codegen(P, banks, block):
    """z_s = W[0] + sum_t v_s[nz[t]] W[nz[t]+1] for s < P.

    Args: params, o, n, v_0..v_{P-1}, nz, c, z_0..z_{P-1}.  ``banks``
    accumulators per vector and sample (t modulo banks), summed at the end.
    """

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        p_ptr = _data(context, builder, sig.args[0], args[0])
        o, n = args[1], args[2]
        v_ptrs = [_data(context, builder, sig.args[3 + s], args[3 + s]) for s in range(P)]
        nz_ptr = _data(context, builder, sig.args[3 + P], args[3 + P])
        c = args[4 + P]
        z_ptrs = [_data(context, builder, sig.args[5 + P + s], args[5 + P + s])
                  for s in range(P)]
        accs = [[[cgutils.alloca_once(builder, V.vty) for _ in range(block)]
                 for _ in range(P)] for _ in range(banks)]
        c_main = builder.and_(c, ir.Constant(_I64, -banks))
        with _loop(builder, ir.Constant(_I64, 0), n, block * L) as (kb, _):
            rem = builder.sub(n, kb)

            def emit(nvec, masks):
                bias = builder.gep(p_ptr, [builder.add(o, kb)])
                for j in range(nvec):
                    b = V.load(builder.gep(bias, [ir.Constant(_I64, j * L)]), masks[j])
                    for s in range(P):
                        builder.store(b, accs[0][s][j])
                        for bank in range(1, banks):
                            builder.store(V.zero, accs[bank][s][j])

                def step(t, bank):
                    idx = _load_index(builder, nz_ptr, t)
                    row = _row_ptr(builder, p_ptr, o, idx, n, kb)
                    ws = [V.load(builder.gep(row, [ir.Constant(_I64, j * L)]), masks[j])
                          for j in range(nvec)]
                    for s in range(P):
                        xs = V.splat(builder.load(builder.gep(v_ptrs[s], [idx])))
                        for j in range(nvec):
                            a = accs[bank][s][j]
                            builder.store(V.fma(xs, ws[j], builder.load(a)), a)

                with _loop(builder, ir.Constant(_I64, 0), c_main, banks) as (t, _):
                    for bank in range(banks):
                        step(builder.add(t, ir.Constant(_I64, bank)), bank)
                with _loop(builder, c_main, c) as (t, _):
                    step(t, 0)
                for s in range(P):
                    out = builder.gep(z_ptrs[s], [kb])
                    for j in range(nvec):
                        acc = builder.load(accs[0][s][j])
                        for bank in range(1, banks):
                            acc = builder.fadd(acc, builder.load(accs[bank][s][j]))
                        V.store(acc, builder.gep(out, [ir.Constant(_I64, j * L)]), masks[j])

            _switch_nvec(builder, V, rem, emit, block)
        return context.get_dummy_value()

    return codegen


def _axpy_codegen(P, block):
    """W[nz[t]+1, :n] += sum_s v_s[nz[t]] * d_s[:n] for t < c.

    Args: W, o, n, v_0..v_{P-1}, nz, c, d_0..d_{P-1}.  No masked store (they
    are slow on some CPUs, AMD Zen 4 among them).  A row of at least one and
    at most ``block`` full vectors plus a rest is done in one pass: every
    vector of the row, and one more ending at the row's end (overlapping the
    last full one), is loaded and updated in registers, the overlapping one
    stored first, so every element is updated once.  Longer rows go by
    blocks of full vectors, then the rest of each row by pieces of half, a
    quarter... of a register; so do rows shorter than one vector.  The
    ``d_s`` are held in registers.
    """

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        w_ptr = _data(context, builder, sig.args[0], args[0])
        o, n = args[1], args[2]
        v_ptrs = [_data(context, builder, sig.args[3 + s], args[3 + s]) for s in range(P)]
        nz_ptr = _data(context, builder, sig.args[3 + P], args[3 + P])
        c = args[4 + P]
        d_ptrs = [_data(context, builder, sig.args[5 + P + s], args[5 + P + s])
                  for s in range(P)]
        zero = ir.Constant(_I64, 0)
        tail = builder.and_(n, ir.Constant(_I64, L - 1))
        nfull = builder.sub(n, tail)
        last = builder.sub(n, ir.Constant(_I64, L))

        def full_vectors(kb, k, overlap):
            """t loop updating vectors kb + j*L (j < k) and, if overlap, the last L elements."""
            offs = [ir.Constant(_I64, j * L) for j in range(k)]
            ds = [[V.load(builder.gep(builder.gep(dp, [kb]), [off]), None) for off in offs]
                  for dp in d_ptrs]
            dlast = [V.load(builder.gep(dp, [last]), None) for dp in d_ptrs] if overlap else None
            with _loop(builder, zero, c) as (t, _):
                idx = _load_index(builder, nz_ptr, t)
                xs = [V.splat(builder.load(builder.gep(vp, [idx]))) for vp in v_ptrs]
                row = _row_ptr(builder, w_ptr, o, idx, n, kb)
                ptrs = [builder.gep(row, [off]) for off in offs]
                new = []
                for j in range(k):
                    acc = V.load(ptrs[j], None)
                    for s in range(P):
                        acc = V.fma(xs[s], ds[s][j], acc)
                    new.append(acc)
                if overlap:
                    plast = builder.gep(_row_ptr(builder, w_ptr, o, idx, n, zero), [last])
                    acc = V.load(plast, None)
                    for s in range(P):
                        acc = V.fma(xs[s], dlast[s], acc)
                    V.store(acc, plast, None)
                for j in range(k):
                    V.store(new[j], ptrs[j], None)

        one_pass = builder.and_(
            builder.and_(builder.icmp_signed(">", nfull, zero), builder.icmp_signed(">", tail, zero)),
            builder.icmp_signed("<=", nfull, ir.Constant(_I64, block * L)))
        with builder.if_else(one_pass) as (then, otherwise):
            with then:
                nvec = builder.trunc(builder.udiv(nfull, ir.Constant(_I64, L)), _I32)
                _switch(builder, nvec, block, lambda k: full_vectors(zero, k, True), "ra1")
            with otherwise:
                with _loop(builder, zero, nfull, block * L) as (kb, _):
                    nvec = builder.trunc(_min_i64(
                        builder, builder.udiv(builder.sub(nfull, kb), ir.Constant(_I64, L)),
                        ir.Constant(_I64, block)), _I32)
                    _switch(builder, nvec, block, lambda k: full_vectors(kb, k, False), "ra")
                with builder.if_then(builder.icmp_signed(">", tail, zero)):
                    widths = []
                    w = L // 2
                    while w >= 1:
                        widths.append(w)
                        w //= 2
                    # piece w starts at nfull + (tail & ~(2w - 1)); present when tail & w
                    present = [builder.icmp_unsigned("!=", builder.and_(tail, ir.Constant(_I64, w)),
                                                     zero) for w in widths]
                    starts = [builder.add(nfull, builder.and_(tail, ir.Constant(_I64, ~(2 * w - 1))))
                              for w in widths]
                    with _loop(builder, zero, c) as (t, _):
                        idx = _load_index(builder, nz_ptr, t)
                        xv = [builder.load(builder.gep(vp, [idx])) for vp in v_ptrs]
                        row = _row_ptr(builder, w_ptr, o, idx, n, zero)
                        for w, has, start in zip(widths, present, starts):
                            with builder.if_then(has):
                                ptr = builder.gep(row, [start])
                                acc = V.piece_load(ptr, w)
                                for s in range(P):
                                    dp = V.piece_load(builder.gep(d_ptrs[s], [start]), w)
                                    acc = V.piece_fma(V.piece_splat(xv[s], w), dp, acc, w)
                                V.piece_store(acc, ptr, w)
        return context.get_dummy_value()

    return codegen


# ------------------------------------------------------------------ intrinsics
@intrinsic
def compact_nonzero(typingctx, v, nz):
    """Write the indices of the nonzero entries of ``v`` to ``nz`` (uint32, at least as long);
    return how many (int64).  NaN counts as nonzero."""
    if not (_float_array(v) and _index_array(nz)):
        return None
    return types.int64(v, nz), _compact_codegen(1)


@intrinsic
def compact_union4(typingctx, v0, v1, v2, v3, nz):
    """As :func:`compact_nonzero` for the entries nonzero in any of four vectors of one length."""
    if not (all(_float_array(v) and v == v0 for v in (v0, v1, v2, v3)) and _index_array(nz)):
        return None
    return types.int64(v0, v1, v2, v3, nz), _compact_codegen(4)


@intrinsic
def sparse_affine(typingctx, params, o, n, v, nz, c, z):
    r"""``z[:n] = W[0] + sum_{t<c} v[nz[t]] * W[nz[t] + 1]``, ``W`` the ``(len(v)+1, n)``
    block of ``params`` at offset ``o``.  Register accumulators, two per vector (even and
    odd ``t``), a block of up to eight vectors of the row at a time."""
    if not (_float_array(params) and _float_array(v) and _float_array(z)
            and _index_array(nz) and params.dtype == v.dtype == z.dtype):
        return None
    sig = types.void(params, types.int64, types.int64, v, nz, types.int64, z)
    return sig, _affine_codegen(1, 2, _BLOCK)


@intrinsic
def sparse_affine4(typingctx, params, o, n, v0, v1, v2, v3, nz, c, z0, z1, z2, z3):
    r""":func:`sparse_affine` of four samples at once over the union ``nz`` of their nonzero
    inputs: each weight row is loaded once for the four (a row whose input is zero in a
    sample adds exactly zero to it).  Four vectors of the row at a time."""
    vs, zs = (v0, v1, v2, v3), (z0, z1, z2, z3)
    if not (_float_array(params) and _index_array(nz)
            and all(_float_array(a) and a.dtype == params.dtype for a in vs + zs)):
        return None
    sig = types.void(params, types.int64, types.int64, *vs, nz, types.int64, *zs)
    return sig, _affine_codegen(4, 1, 4)


@intrinsic
def rows_axpy(typingctx, W, o, n, v, nz, c, d):
    r"""``W[nz[t] + 1, :n] += v[nz[t]] * d[:n]`` for ``t < c`` (``W`` the block of width ``n``
    at offset ``o`` of the flat array ``W``): the rank-1 gradient update of one sample.
    See :func:`_axpy_codegen` for how rows are cut into register blocks."""
    if not (_float_array(W) and _float_array(v) and _float_array(d) and _index_array(nz)
            and W.dtype == v.dtype == d.dtype):
        return None
    sig = types.void(W, types.int64, types.int64, v, nz, types.int64, d)
    return sig, _axpy_codegen(1, _BLOCK)


@intrinsic
def rows_axpy4(typingctx, W, o, n, v0, v1, v2, v3, nz, c, d0, d1, d2, d3):
    r"""``W[nz[t] + 1, :n] += sum_s v_s[nz[t]] * d_s[:n]``: :func:`rows_axpy` of four samples
    over the union of their nonzero inputs, each row loaded and stored once."""
    vs, ds = (v0, v1, v2, v3), (d0, d1, d2, d3)
    if not (_float_array(W) and _index_array(nz)
            and all(_float_array(a) and a.dtype == W.dtype for a in vs + ds)):
        return None
    sig = types.void(W, types.int64, types.int64, *vs, nz, types.int64, *ds)
    return sig, _axpy_codegen(4, 4)


@intrinsic
def row_dots(typingctx, W, o, n, m, d, out):
    r"""``out[j] = W[j + 1, :n] . d[:n]`` for ``j < m`` (``W`` the block of width ``n`` at
    offset ``o``): the product :math:`W_{1:}\,\delta` that backprop sends down a layer."""
    if not (_float_array(W) and _float_array(d) and _float_array(out)
            and W.dtype == d.dtype == out.dtype):
        return None
    sig = types.void(W, types.int64, types.int64, types.int64, d, out)

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        w_ptr = _data(context, builder, sig.args[0], args[0])
        o, n, m = args[1], args[2], args[3]
        d_ptr = _data(context, builder, sig.args[4], args[4])
        out_ptr = _data(context, builder, sig.args[5], args[5])
        # zero the outputs, then add one block of columns at a time
        with _loop(builder, ir.Constant(_I64, 0), m) as (j, _):
            builder.store(ir.Constant(V.fty, 0.0), builder.gep(out_ptr, [j]))
        with _loop(builder, ir.Constant(_I64, 0), n, _BLOCK * L) as (kb, _):
            rem = builder.sub(n, kb)

            def emit(nvec, masks):
                dblk = builder.gep(d_ptr, [kb])
                ds = [V.load(builder.gep(dblk, [ir.Constant(_I64, k * L)]), masks[k])
                      for k in range(nvec)]
                with _loop(builder, ir.Constant(_I64, 0), m) as (j, _):
                    row = _row_ptr(builder, w_ptr, o, j, n, kb)
                    acc = None
                    for k in range(nvec):
                        w = V.load(builder.gep(row, [ir.Constant(_I64, k * L)]), masks[k])
                        acc = builder.fmul(w, ds[k]) if acc is None else V.fma(w, ds[k], acc)
                    optr = builder.gep(out_ptr, [j])
                    builder.store(builder.fadd(builder.load(optr), V.hsum(acc)), optr)

            _switch_nvec(builder, V, rem, emit)
        return context.get_dummy_value()

    return sig, codegen


def _reduce4(builder, V, accs):
    """The lane sums of four vectors, as one ``<4 x fty>`` (a transposed tree reduction:
    the shuffles are shared by the four sums)."""
    L = V.lanes
    a, b, c, d = accs

    def shuf(x, y, idx):
        return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(_I32, len(idx)), idx))

    h = L // 2
    ab = builder.fadd(shuf(a, b, list(range(h)) + [L + i for i in range(h)]),
                      shuf(a, b, [h + i for i in range(h)] + [L + h + i for i in range(h)]))
    cd = builder.fadd(shuf(c, d, list(range(h)) + [L + i for i in range(h)]),
                      shuf(c, d, [h + i for i in range(h)] + [L + h + i for i in range(h)]))
    # ab = [a (h lanes) | b (h lanes)], cd likewise: halve each group once more across both
    q = h // 2
    lo = list(range(q)) + [h + i for i in range(q)] + [L + i for i in range(q)] + \
        [L + h + i for i in range(q)]
    hi = [q + i for i in range(q)] + [h + q + i for i in range(q)] + \
        [L + q + i for i in range(q)] + [L + h + q + i for i in range(q)]
    s = builder.fadd(shuf(ab, cd, lo), shuf(ab, cd, hi))  # four groups of q lanes
    g = q
    while g > 1:
        half = g // 2
        lo = [grp * g + i for grp in range(4) for i in range(half)]
        hi = [grp * g + half + i for grp in range(4) for i in range(half)]
        s = builder.fadd(shuf(s, s, lo), shuf(s, s, hi))
        g = half
    return s


@intrinsic
def row_dots4(typingctx, W, o, n, m, d0, d1, d2, d3, out0, out1, out2, out3):
    r""":func:`row_dots` of four vectors ``d_s`` at once: ``out_s[j] = W[j + 1, :n] . d_s``,
    each row loaded once for the four, the four lane sums reduced together."""
    ds_t, outs_t = (d0, d1, d2, d3), (out0, out1, out2, out3)
    if not (_float_array(W) and all(_float_array(a) and a.dtype == W.dtype
                                    for a in ds_t + outs_t)):
        return None
    sig = types.void(W, types.int64, types.int64, types.int64, *ds_t, *outs_t)

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        w_ptr = _data(context, builder, sig.args[0], args[0])
        o, n, m = args[1], args[2], args[3]
        d_ptrs = [_data(context, builder, sig.args[4 + s], args[4 + s]) for s in range(4)]
        o_ptrs = [_data(context, builder, sig.args[8 + s], args[8 + s]) for s in range(4)]
        for op in o_ptrs:
            with _loop(builder, ir.Constant(_I64, 0), m) as (j, _):
                builder.store(ir.Constant(V.fty, 0.0), builder.gep(op, [j]))
        with _loop(builder, ir.Constant(_I64, 0), n, _BLOCK * L) as (kb, _):
            rem = builder.sub(n, kb)

            def emit(nvec, masks):
                ds = [[V.load(builder.gep(builder.gep(dp, [kb]), [ir.Constant(_I64, k * L)]),
                              masks[k]) for k in range(nvec)] for dp in d_ptrs]
                with _loop(builder, ir.Constant(_I64, 0), m) as (j, _):
                    row = _row_ptr(builder, w_ptr, o, j, n, kb)
                    ws = [V.load(builder.gep(row, [ir.Constant(_I64, k * L)]), masks[k])
                          for k in range(nvec)]
                    accs = []
                    for s in range(4):
                        acc = builder.fmul(ws[0], ds[s][0])
                        for k in range(1, nvec):
                            acc = V.fma(ws[k], ds[s][k], acc)
                        accs.append(acc)
                    sums = _reduce4(builder, V, accs)
                    for s, op in enumerate(o_ptrs):
                        ptr = builder.gep(op, [j])
                        lane = builder.extract_element(sums, ir.Constant(_I32, s))
                        builder.store(builder.fadd(builder.load(ptr), lane), ptr)

            _switch_nvec(builder, V, rem, emit)
        return context.get_dummy_value()

    return sig, codegen


# ------------------------------------------------------------------ sigmoid
# exp(x) = 2**k * exp(r), k = round(x / ln 2), |r| <= ln(2) / 2, exp(r) by its Taylor
# polynomial (degree 7 for float32, 13 for float64: truncation below half an ulp), 2**k
# built from its exponent bits as 2**(k + 60) * 2**-60, so that results in the subnormal
# range come out (gradually) right; below ``zero`` the result is exactly 0, as numpy's.
_EXP = {
    16: dict(zero=-104.0, ln2_hi=0.693145751953125, ln2_lo=1.428606765330187e-06, degree=7,
             ity=ir.IntType(32), bias=127, mant=23),
    8: dict(zero=-745.2, ln2_hi=0.6931471803691238, ln2_lo=1.9082149292705877e-10, degree=13,
            ity=ir.IntType(64), bias=1023, mant=52),
}


def _vexp(builder, V, x):
    """exp(x) elementwise for a vector ``x`` <= 0 of the dtype of ``V``."""
    P = _EXP[V.lanes]
    vty = V.vty
    fconst = lambda c: ir.Constant(vty, [c] * V.lanes)  # noqa: E731
    mod = builder.module
    sfx = f"v{V.lanes}{'f32' if V.lanes == 16 else 'f64'}"
    rint = cgutils.get_or_insert_function(mod, ir.FunctionType(vty, [vty]), f"llvm.rint.{sfx}")
    maxf = cgutils.get_or_insert_function(mod, ir.FunctionType(vty, [vty, vty]),
                                          f"llvm.maxnum.{sfx}")
    underflow = builder.fcmp_ordered("<", x, fconst(P["zero"]))
    x = builder.call(maxf, [x, fconst(P["zero"])])
    k = builder.call(rint, [builder.fmul(x, fconst(1.4426950408889634))])
    r = V.fma(k, fconst(-P["ln2_hi"]), x)
    r = V.fma(k, fconst(-P["ln2_lo"]), r)
    # Horner: sum_{i<=deg} r^i / i!
    fact = [1.0]
    for i in range(1, P["degree"] + 1):
        fact.append(fact[-1] * i)
    p = fconst(1.0 / fact[P["degree"]])
    for i in range(P["degree"] - 1, -1, -1):
        p = V.fma(p, r, fconst(1.0 / fact[i]))
    ivty = ir.VectorType(P["ity"], V.lanes)
    ki = builder.fptosi(k, ivty)
    bits = builder.shl(builder.add(ki, ir.Constant(ivty, [P["bias"] + 60] * V.lanes)),
                       ir.Constant(ivty, [P["mant"]] * V.lanes))
    e = builder.fmul(builder.fmul(p, builder.bitcast(bits, vty)), fconst(2.0 ** -60))
    return builder.select(underflow, V.zero, e)


@intrinsic
def sigmoid_into(typingctx, z, out):
    r"""``out[:] = sigmoid(z)`` (``out`` may be ``z``), vectorised, as the reference computes
    it: :math:`e = e^{-|z|}`, then :math:`1/(1+e)` for :math:`z \ge 0`, :math:`e/(1+e)` otherwise."""
    if not (_float_array(z) and _float_array(out) and z.dtype == out.dtype):
        return None
    sig = types.void(z, out)

    def codegen(context, builder, sig, args):
        V = _V(builder, sig.args[0].dtype)
        L = V.lanes
        z_ptr = _data(context, builder, sig.args[0], args[0])
        o_ptr = _data(context, builder, sig.args[1], args[1])
        n = context.make_array(sig.args[0])(context, builder, args[0]).nitems
        fabs = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(V.vty, [V.vty]),
            f"llvm.fabs.v{L}{'f32' if L == 16 else 'f64'}")
        one = ir.Constant(V.vty, [1.0] * L)

        def body(zv):
            e = _vexp(builder, V, builder.fsub(V.zero, builder.call(fabs, [zv])))
            num = builder.select(builder.fcmp_ordered(">=", zv, V.zero), one, e)
            s = builder.fdiv(num, builder.fadd(one, e))
            # NaN in, NaN out (the select above would turn it into e / (1 + e))
            return builder.select(builder.fcmp_unordered("uno", zv, zv), zv, s)

        with _loop(builder, ir.Constant(_I64, 0), n, L) as (i, _):
            rem = builder.sub(n, i)
            full = builder.icmp_signed(">=", rem, ir.Constant(_I64, L))
            with builder.if_else(full) as (then, otherwise):
                with then:
                    V.store(body(V.load(builder.gep(z_ptr, [i]), None)),
                            builder.gep(o_ptr, [i]), None)
                with otherwise:
                    mask = V.mask_below(0, builder.trunc(rem, _I32))
                    V.store(body(V.load(builder.gep(z_ptr, [i]), mask)),
                            builder.gep(o_ptr, [i]), mask)
        return context.get_dummy_value()

    return sig, codegen

