# Included by mlp.pyx: the penalties and the optimisers' steps -- one definition of each
# (step1), applied by the loops of every path (optimizer_step, the mini-batch steps of
# the dense and sparse paths, online learning).

# ------------------------------------------------------------------- one weight's step
cdef inline floating step1(int opt, floating w, floating g, floating* s1, floating* s2,
                           floating lr, floating mu, floating rho, floating eps,
                           floating lr_t) noexcept nogil:
    r"""The new value of one weight ``w`` after a step with gradient ``g``, as the
    reference's :func:`~fastnet.reference.kernels.optimizer_step` rounds it (same
    operations, same order, in the dtype of ``w``); updates its state ``s1[0]`` (and
    ``s2[0]`` for Adam).

    * SGD: :math:`w - \eta g`
    * momentum: :math:`v \leftarrow \mu v - \eta g`, :math:`w + v`
    * Nesterov: :math:`v \leftarrow \mu v - \eta g`, :math:`w + (\mu v - \eta g)`
    * RMSprop: :math:`s \leftarrow \rho s + (1-\rho) g^2`, :math:`w - \eta g/(\sqrt s+\epsilon)`
    * Adam: :math:`m \leftarrow \mu m + (1-\mu) g`, :math:`v \leftarrow \rho v + (1-\rho) g^2`,
      :math:`w - \eta_t m/(\sqrt v+\epsilon)` with ``lr_t`` :math:`=\eta_t` (see
      :func:`adam_lr`).

    The loops call it with a constant ``opt`` (see :func:`step_range`), so each is
    compiled for one optimiser, without a branch.
    """
    cdef floating s, v, one = 1
    if opt == OPT_SGD:
        return w - lr * g
    if opt == OPT_MOMENTUM or opt == OPT_NESTEROV:
        s = s1[0] * mu
        s = s - lr * g
        s1[0] = s
        if opt == OPT_MOMENTUM:
            return w + s
        return w + (mu * s - lr * g)
    if opt == OPT_RMSPROP:
        s = s1[0] * rho
        s = s + (one - rho) * g * g
        s1[0] = s
        return w - lr * g / (f_sqrt(s) + eps)
    s = s1[0] * mu
    s = s + (one - mu) * g
    s1[0] = s
    v = s2[0] * rho
    v = v + (one - rho) * g * g
    s2[0] = v
    return w - lr_t * s / (f_sqrt(v) + eps)


cdef inline double adam_lr(double lr, double beta1, double beta2, double t) noexcept nogil:
    r"""Adam's bias-corrected step :math:`\eta\sqrt{1-\beta_2^{t+1}}/(1-\beta_1^{t+1})` for
    step ``t`` (0-based), in float64 as the reference computes it."""
    return lr * sqrt(1.0 - pow(beta2, t + 1.0)) / (1.0 - pow(beta1, t + 1.0))


cdef inline void _step_loop(int opt, floating* P, floating* G, floating* S1, floating* S2,
                            Py_ssize_t n, floating bsz, int pen, floating lam, floating lr,
                            floating mu, floating rho, floating eps, floating lr_t,
                            bint clear) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g
    for i in range(n):
        g = G[i] / bsz + penalty_term(pen, lam, P[i])
        if clear:
            G[i] = 0
        P[i] = step1(opt, P[i], g, &S1[i], &S2[i], lr, mu, rho, eps, lr_t)


cdef void step_range(int opt, floating* P, floating* G, floating* S1, floating* S2,
                     Py_ssize_t n, floating bsz, int pen, floating lam, floating lr,
                     floating mu, floating rho, floating eps, floating lr_t,
                     bint clear) noexcept nogil:
    """``n`` weights' step with the gradient ``g = G / bsz + penalty'(w)`` (the reference's
    ``grad /= b``, then :func:`penalty_grad`, then :func:`optimizer_step`); ``S1``/``S2``
    are the state's two halves at the same offset.  ``clear``: ``G[i] = 0`` once read
    (accumulation buffers ready for the next batch).  One pass over the weights."""
    # one call per optimiser, each with a constant `opt`: its loop has no branch on it
    if opt == OPT_SGD:
        _step_loop(OPT_SGD, P, G, S1, S2, n, bsz, pen, lam, lr, mu, rho, eps, lr_t, clear)
    elif opt == OPT_MOMENTUM:
        _step_loop(OPT_MOMENTUM, P, G, S1, S2, n, bsz, pen, lam, lr, mu, rho, eps, lr_t, clear)
    elif opt == OPT_NESTEROV:
        _step_loop(OPT_NESTEROV, P, G, S1, S2, n, bsz, pen, lam, lr, mu, rho, eps, lr_t, clear)
    elif opt == OPT_RMSPROP:
        _step_loop(OPT_RMSPROP, P, G, S1, S2, n, bsz, pen, lam, lr, mu, rho, eps, lr_t, clear)
    else:
        _step_loop(OPT_ADAM, P, G, S1, S2, n, bsz, pen, lam, lr, mu, rho, eps, lr_t, clear)


cdef void _step_segment(
        floating[::1] P, floating[::1] S, floating[:, ::1] Gb, int C, Py_ssize_t lo,
        Py_ssize_t hi, floating bsz, int opt, floating lr, floating mu, floating rho,
        floating eps, floating lr_t, int pen, floating lam, bint clear) noexcept nogil:
    """``g = (Gb[0] + Gb[1] + ... + Gb[C-1]) / bsz + penalty'(w)`` on ``lo:hi`` (the chunks'
    gradients added in chunk order), the optimiser's update of ``P``/``S`` with it
    (:func:`step_range`); with ``clear``, ``Gb[:, lo:hi] = 0`` ready for the next batch."""
    cdef Py_ssize_t i, n = P.shape[0]
    cdef int c
    if hi <= lo:
        return
    for c in range(1, C):
        for i in range(lo, hi):
            Gb[0, i] += Gb[c, i]
        if clear:
            for i in range(lo, hi):
                Gb[c, i] = 0
    step_range(opt, &P[lo], &Gb[0, lo], &S[lo], &S[n + lo], hi - lo, bsz, pen, lam, lr, mu,
               rho, eps, lr_t, clear)


cdef void step_chunks(floating[::1] P, floating[::1] S, floating[:, ::1] Gb, int C,
                      const int64_t[:, ::1] segs, floating bsz, int opt, floating lr,
                      floating mu, floating rho, floating eps, floating lr_t, int pen,
                      floating lam, int Tstep, bint clear) noexcept nogil:
    """The step of a batch whose gradient is the sum of the ``C`` chunk buffers ``Gb``, the
    parameters cut into the segments ``segs`` (``(lo, hi, penalised)``: bias rows are not
    penalised), on ``Tstep`` threads."""
    cdef Py_ssize_t q, nseg = segs.shape[0]
    if Tstep > 1:
        for q in prange(nseg, num_threads=Tstep, schedule="static"):
            _step_segment(P, S, Gb, C, segs[q, 0], segs[q, 1], bsz, opt, lr, mu, rho, eps,
                          lr_t, pen if segs[q, 2] else PEN_NONE, lam, clear)
    else:
        for q in range(nseg):
            _step_segment(P, S, Gb, C, segs[q, 0], segs[q, 1], bsz, opt, lr, mu, rho, eps,
                          lr_t, pen if segs[q, 2] else PEN_NONE, lam, clear)


# ------------------------------------------------------------------------ penalties
cdef double _penalty_value(const floating[::1] P, const int64_t[::1] sizes,
                           const int64_t[::1] offs, int pen) noexcept nogil:
    # four partial sums, one loop per penalty: penalty_value on a 64-100-10 net went from 11
    # to 7 us a call, its argument checks included (one chain of dependent adds with a branch
    # inside was about 4 cycles an entry)
    cdef Py_ssize_t l, i, lo, hi
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, w0, w1, w2, w3
    for l in range(sizes.shape[0] - 1):
        lo, hi = offs[l] + sizes[l + 1], offs[l + 1]
        i = lo
        if pen == PEN_L2:
            while i + 4 <= hi:
                w0, w1, w2, w3 = P[i], P[i + 1], P[i + 2], P[i + 3]
                s0 += w0 * w0
                s1 += w1 * w1
                s2 += w2 * w2
                s3 += w3 * w3
                i += 4
            while i < hi:
                s0 += <double>P[i] * P[i]
                i += 1
        else:
            while i + 4 <= hi:
                s0 += fabs(P[i])
                s1 += fabs(P[i + 1])
                s2 += fabs(P[i + 2])
                s3 += fabs(P[i + 3])
                i += 4
            while i < hi:
                s0 += fabs(P[i])
                i += 1
    return (s0 + s1) + (s2 + s3)


def penalty_value(penalty_kind, lam, params, sizes):
    r"""The penalty of all weights (bias rows excluded), float64.

    L2: :math:`\frac{\lambda}{2}\sum w^2`; L1: :math:`\lambda\sum|w|`; none: 0.
    """
    K = "penalty_value"
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lam = chk.real(K, "lam", lam)
    sz_, of_ = chk.network_shape(K, params, sizes)
    if pen == PEN_NONE or lam == 0:
        return 0.0
    cdef const float[::1] p32
    cdef const double[::1] p64
    cdef const int64_t[::1] sz = sz_, of = of_
    cdef double s
    cdef int pk = pen
    if params.dtype == np.float32:
        p32 = params
        with nogil:
            s = _penalty_value(p32, sz, of, pk)
    else:
        p64 = params
        with nogil:
            s = _penalty_value(p64, sz, of, pk)
    return lam / 2 * s if pen == PEN_L2 else lam * s


cdef void _penalty_grad(const floating[::1] P, const int64_t[::1] sizes, const int64_t[::1] offs,
                        int pen, floating lam, floating[::1] G) noexcept nogil:
    cdef Py_ssize_t l, i
    for l in range(sizes.shape[0] - 1):
        for i in range(offs[l] + sizes[l + 1], offs[l + 1]):
            G[i] += penalty_term(pen, lam, P[i])


def penalty_grad(penalty_kind, lam, params, sizes, grad):
    r"""``grad += d(penalty)/d(params)`` in place: :math:`\lambda w` (L2) or
    :math:`\lambda\,\mathrm{sign}(w)` (L1); bias rows get nothing."""
    K = "penalty_grad"
    pen = chk.code(K, "penalty_kind", penalty_kind, chk.PENALTIES)
    lam = chk.real(K, "lam", lam)
    sz_, of_ = chk.network_shape(K, params, sizes)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.writable(K, "grad", grad)
    chk.shape(K, "grad", grad, params.shape)
    if pen == PEN_NONE or lam == 0:
        return
    cdef const float[::1] p32
    cdef const double[::1] p64
    cdef float[::1] g32
    cdef double[::1] g64
    cdef const int64_t[::1] sz = sz_, of = of_
    cdef int pk = pen
    cdef double lam_ = lam
    if params.dtype == np.float32:
        p32, g32 = params, grad
        with nogil:
            _penalty_grad(p32, sz, of, pk, <float>lam_, g32)
    else:
        p64, g64 = params, grad
        with nogil:
            _penalty_grad(p64, sz, of, pk, lam_, g64)


# ------------------------------------------------------------------ optimizer_step
def _state(K, state, params):
    """``state``: ``2 * len(params)`` entries of params' dtype, written in place."""
    chk.float_array(K, "state", state, ndim=1, dtype=params.dtype)
    chk.writable(K, "state", state)
    chk.shape(K, "state", state, (2 * params.shape[0],))
    return state


def _hyper(K, lr, mu, rho, eps):
    # (no generator expression: Cython 3.0.0 miscompiles one over the arguments)
    return chk.real(K, "lr", lr), chk.real(K, "mu", mu), chk.real(K, "rho", rho), \
        chk.real(K, "eps", eps)


cdef void _opt_threads(int opt, floating* P, floating* G, floating* S, Py_ssize_t n,
                       floating lr, floating mu, floating rho, floating eps, floating lr_t,
                       int T) noexcept nogil:
    cdef Py_ssize_t chunk, lo, hi
    cdef int t
    if T <= 1:
        step_range(opt, P, G, S, S + n, n, 1, PEN_NONE, 0, lr, mu, rho, eps, lr_t, False)
        return
    chunk = (n + T - 1) // T
    for t in prange(T, num_threads=T, schedule="static", chunksize=1):
        lo = t * chunk
        hi = min(n, lo + chunk)
        if hi > lo:
            step_range(opt, P + lo, G + lo, S + lo, S + n + lo, hi - lo, 1, PEN_NONE, 0, lr,
                       mu, rho, eps, lr_t, False)


cdef _opt_entry(int opt, floating[::1] P, floating[::1] G, floating[::1] S, floating lr,
                floating mu, floating rho, floating eps, floating lr_t, int T):
    cdef Py_ssize_t n = P.shape[0]
    if n == 0:
        return
    with nogil:
        _opt_threads(opt, &P[0], &G[0], &S[0], n, lr, mu, rho, eps, lr_t, T)


def optimizer_step(optimizer, params, grad, state, lr, mu, rho, eps, t):
    r"""One update of ``params`` (and ``state``) in place from the gradient ``grad``.

    * 0 sgd: :math:`w \leftarrow w - \eta g`
    * 1 momentum: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + v`
    * 2 RMSprop: :math:`s \leftarrow \rho s + (1-\rho) g^2,\;
      w \leftarrow w - \eta g / (\sqrt{s} + \epsilon)`
    * 3 Adam (:math:`\beta_1=\mu`, :math:`\beta_2=\rho`): :math:`m`, :math:`v` in the two
      halves of ``state``, step :math:`\eta\sqrt{1-\beta_2^{t+1}}/(1-\beta_1^{t+1})`
    * 4 Nesterov: :math:`v \leftarrow \mu v - \eta g,\; w \leftarrow w + \mu v - \eta g`

    ``state`` has ``2 * len(params)`` entries; ``t`` is the number of steps taken before.
    """
    K = "optimizer_step"
    opt = chk.code(K, "optimizer", optimizer, chk.OPTIMIZERS)
    chk.float_array(K, "params", params, ndim=1)
    chk.writable(K, "params", params)
    chk.float_array(K, "grad", grad, ndim=1, dtype=params.dtype)
    chk.shape(K, "grad", grad, params.shape)
    state = _state(K, state, params)
    lr, mu, rho, eps = _hyper(K, lr, mu, rho, eps)
    t = chk.integer(K, "t", t, 0)
    lr_t = adam_lr(lr, mu, rho, t) if opt == OPT_ADAM else lr
    if not grad.flags.writeable:      # typed as writable (shared with the other paths)
        grad = grad.copy()
    cdef int T = _threads_for(params.shape[0], 1, _min_elems, _max_threads())
    if params.dtype == np.float32:
        _opt_entry[cython.float](opt, params, grad, state, lr, mu, rho, eps, lr_t, T)
    else:
        _opt_entry[cython.double](opt, params, grad, state, lr, mu, rho, eps, lr_t, T)
