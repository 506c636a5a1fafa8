# Included by mlp.pyx: online learning (batch 1) on the dense path.
#
# One sample at a time, in matrix-vector loops over the rows of each W_l, four rows per
# pass (fastnet_loops.h: the running sums of a row block stay in registers and each
# weight row is loaded once per pass).  Per sample t, after its forward pass:
#
#   * layers L-1 .. 1, one pass over W_l each: the error term of the layer below,
#     delta_l[j] = (W_l[1+j] . delta_{l+1}) f'(a_l[j]), from the row as it is, and that
#     row's update, in the same pass;
#   * layer 0, one pass over W_0: row j's update with x_t[j] delta_1, and, with the
#     updated row, sample t+1's sum z += x_{t+1}[j] W_0[1+j] -- the step of sample t and
#     the forward pass of sample t+1 over the same rows, the arithmetic of two passes in
#     one (784-256-128-10's W_0 is 800 KB, more than a core's L2: passes over it count);
#   * sample t+1's upper layers: one pass over each W_l.
#
# Plain SGD without penalty on inputs with many zeros (a sampled density of at most
# _SKIP_DENSITY) visits only the rows of W_0 where x_t or x_{t+1} is not zero (the update
# of a zero input is exactly nothing, and so is its forward term); on denser inputs
# listing them costs more than it saves (measured: 12 % of an epoch).  The
# other optimisers, or a penalty, change every weight at every step: their layer-0 pass
# updates every row (step1), then sums the next sample's forward pass.
#
# An epoch runs on a padded, aligned copy of the weights (see _online_dense).

include "_loops.pxi"


cdef Py_ssize_t nonzero_rows(const floating* x, const floating* x2, Py_ssize_t n,
                             int32_t* idx) noexcept nogil:
    """The indices ``j`` where ``x[j]`` or ``x2[j]`` (NULL: none) is not zero, into ``idx``;
    returns their number (always stored, advanced when kept: no branch to mispredict)."""
    cdef Py_ssize_t j, c = 0
    if x2 == NULL:
        for j in range(n):
            idx[c] = <int32_t>j
            c += x[j] != 0
    else:
        for j in range(n):
            idx[c] = <int32_t>j
            c += (x[j] != 0) | (x2[j] != 0)
    return c


cdef void rows_forward(const floating* W, Py_ssize_t n_out, const floating* x,
                       const int32_t* idx, Py_ssize_t c, floating* z) noexcept nogil:
    """``z = sum_j x[j] W[j]`` over the rows ``idx[0:c]`` (all rows if ``idx`` is NULL, then
    ``c`` of them), four rows per pass, in order (``z`` is overwritten)."""
    cdef Py_ssize_t e = 0, k, j0, j1, j2, j3
    for k in range(n_out):
        z[k] = 0
    while e + 4 <= c:
        if idx != NULL:
            j0, j1, j2, j3 = idx[e], idx[e + 1], idx[e + 2], idx[e + 3]
        else:
            j0, j1, j2, j3 = e, e + 1, e + 2, e + 3
        if floating is float:
            fl_fwd4_f32(z, n_out, W + j0 * n_out, W + j1 * n_out, W + j2 * n_out,
                        W + j3 * n_out, x[j0], x[j1], x[j2], x[j3])
        else:
            fl_fwd4_f64(z, n_out, W + j0 * n_out, W + j1 * n_out, W + j2 * n_out,
                        W + j3 * n_out, x[j0], x[j1], x[j2], x[j3])
        e += 4
    while e < c:
        j0 = idx[e] if idx != NULL else e
        if floating is float:
            fl_fwd1_f32(z, n_out, W + j0 * n_out, x[j0])
        else:
            fl_fwd1_f64(z, n_out, W + j0 * n_out, x[j0])
        e += 1


cdef void rows_sgd_forward(floating* W, Py_ssize_t n_out, const floating* d, floating lr,
                           const floating* x, const floating* x2, const int32_t* idx,
                           Py_ssize_t c, floating* z) noexcept nogil:
    """Rows ``idx[0:c]`` of ``W`` (all ``c`` rows if ``idx`` is NULL): the SGD step
    ``W[j] -= lr (x[j] d)``, then ``z += x2[j] W[j]`` with the updated row, in one pass
    (``z`` zeroed first)."""
    cdef Py_ssize_t e = 0, k, j0, j1, j2, j3
    for k in range(n_out):
        z[k] = 0
    while e + 4 <= c:
        if idx != NULL:
            j0, j1, j2, j3 = idx[e], idx[e + 1], idx[e + 2], idx[e + 3]
        else:
            j0, j1, j2, j3 = e, e + 1, e + 2, e + 3
        if floating is float:
            fl_sgd_fwd4_f32(z, d, n_out, lr, W + j0 * n_out, W + j1 * n_out, W + j2 * n_out,
                            W + j3 * n_out, x[j0], x[j1], x[j2], x[j3], x2[j0], x2[j1],
                            x2[j2], x2[j3])
        else:
            fl_sgd_fwd4_f64(z, d, n_out, lr, W + j0 * n_out, W + j1 * n_out, W + j2 * n_out,
                            W + j3 * n_out, x[j0], x[j1], x[j2], x[j3], x2[j0], x2[j1],
                            x2[j2], x2[j3])
        e += 4
    while e < c:
        j0 = idx[e] if idx != NULL else e
        if floating is float:
            fl_sgd_fwd1_f32(z, d, n_out, lr, W + j0 * n_out, x[j0], x2[j0])
        else:
            fl_sgd_fwd1_f64(z, d, n_out, lr, W + j0 * n_out, x[j0], x2[j0])
        e += 1


cdef void rows_dot(floating* W, Py_ssize_t n_in, Py_ssize_t n_out, const floating* d,
                   const floating* a, floating lr, bint sgd, floating* out) noexcept nogil:
    """``out[j] = W[j] . d`` for the ``n_in`` rows of ``W``; with ``sgd`` also the step
    ``W[j] -= lr (a[j] d)`` in the same pass (the dot product sees the row before it)."""
    cdef Py_ssize_t j = 0
    while j + 4 <= n_in:
        if floating is float:
            if sgd:
                fl_dot_sgd4_f32(d, n_out, lr, W + j * n_out, W + (j + 1) * n_out,
                                W + (j + 2) * n_out, W + (j + 3) * n_out, a[j], a[j + 1],
                                a[j + 2], a[j + 3], out + j)
            else:
                fl_dot4_f32(d, n_out, W + j * n_out, W + (j + 1) * n_out, W + (j + 2) * n_out,
                            W + (j + 3) * n_out, out + j)
        else:
            if sgd:
                fl_dot_sgd4_f64(d, n_out, lr, W + j * n_out, W + (j + 1) * n_out,
                                W + (j + 2) * n_out, W + (j + 3) * n_out, a[j], a[j + 1],
                                a[j + 2], a[j + 3], out + j)
            else:
                fl_dot4_f64(d, n_out, W + j * n_out, W + (j + 1) * n_out, W + (j + 2) * n_out,
                            W + (j + 3) * n_out, out + j)
        j += 4
    while j < n_in:
        if floating is float:
            out[j] = fl_dot_sgd1_f32(d, n_out, lr, W + j * n_out, a[j]) if sgd else \
                fl_dot1_f32(d, n_out, W + j * n_out)
        else:
            out[j] = fl_dot_sgd1_f64(d, n_out, lr, W + j * n_out, a[j]) if sgd else \
                fl_dot1_f64(d, n_out, W + j * n_out)
        j += 1


cdef inline void _outer_loop(int opt, floating* W, floating* S1, floating* S2, Py_ssize_t n_in,
                             Py_ssize_t n_out, const floating* a, const floating* d, int pen,
                             floating lam, floating lr, floating mu, floating rho,
                             floating eps, floating lr_t) noexcept nogil:
    cdef Py_ssize_t j, k, r
    cdef floating g
    for j in range(n_in):
        for k in range(n_out):
            r = j * n_out + k
            g = a[j] * d[k] + penalty_term(pen, lam, W[r])
            W[r] = step1(opt, W[r], g, &S1[r], &S2[r], lr, mu, rho, eps, lr_t)


cdef void outer_step(int opt, floating* W, floating* S1, floating* S2, Py_ssize_t n_in,
                     Py_ssize_t n_out, const floating* a, const floating* d, int pen,
                     floating lam, floating lr, floating mu, floating rho, floating eps,
                     floating lr_t) noexcept nogil:
    """The step of a layer's weight rows with the sample's gradient ``g = a d^T`` (plus
    the penalty's): :func:`step1` on every weight (one loop per optimiser)."""
    if opt == OPT_SGD:
        _outer_loop(OPT_SGD, W, S1, S2, n_in, n_out, a, d, pen, lam, lr, mu, rho, eps, lr_t)
    elif opt == OPT_MOMENTUM:
        _outer_loop(OPT_MOMENTUM, W, S1, S2, n_in, n_out, a, d, pen, lam, lr, mu, rho, eps, lr_t)
    elif opt == OPT_NESTEROV:
        _outer_loop(OPT_NESTEROV, W, S1, S2, n_in, n_out, a, d, pen, lam, lr, mu, rho, eps, lr_t)
    elif opt == OPT_RMSPROP:
        _outer_loop(OPT_RMSPROP, W, S1, S2, n_in, n_out, a, d, pen, lam, lr, mu, rho, eps, lr_t)
    else:
        _outer_loop(OPT_ADAM, W, S1, S2, n_in, n_out, a, d, pen, lam, lr, mu, rho, eps, lr_t)


cdef double online_train(floating* P, floating* S, const int64_t[::1] sizes,
                         const int64_t[::1] offs, const int64_t[::1] qw,
                         const int64_t[::1] kinds, int lk,
                         const floating[:, ::1] X, const floating[:, ::1] Y,
                         const int64_t[::1] order, int opt, floating lr, floating mu,
                         floating rho, floating eps, int pen, floating lam, double lr_d,
                         double mu_d, double rho_d, Py_ssize_t t0, floating* ws,
                         const int64_t[::1] act, const int64_t[::1] dlt,
                         int32_t* idx, bint skip) noexcept nogil:
    """An epoch of online learning (see the top of this file); returns the summed loss,
    each sample's measured before its step.  Layer ``l``'s rows are ``qw[l]`` wide (its
    ``sizes[l + 1]`` units, then zeros: see :func:`_online_dense`), at ``offs[l]``."""
    cdef Py_ssize_t L = sizes.shape[0] - 1, n0 = sizes[0], n1 = qw[0], NP = offs[L]
    cdef Py_ssize_t m = order.shape[0], t, l, n_in, n_out, c, j
    cdef bint sgd = opt == OPT_SGD and pen == PEN_NONE
    cdef double total = 0
    cdef floating lr_t = lr
    cdef const floating* x
    cdef const floating* x2
    cdef floating* z = ws + act[0]          # layer 0's sums, then its activations
    cdef floating* W
    if m == 0:
        return 0
    cdef int32_t* rows = idx if skip else NULL
    x = &X[order[0], 0]
    c = nonzero_rows(x, NULL, n0, idx) if skip else n0
    rows_forward(P + offs[0] + n1, n1, x, rows, c, z)
    for t in range(m):
        # the rest of sample t's forward pass
        bias_act(<int>kinds[0], z, P + offs[0], 1, sizes[1])
        for l in range(1, L):
            n_in = sizes[l]
            n_out = qw[l]
            rows_forward(P + offs[l] + n_out, n_out, ws + act[l - 1], NULL, n_in, ws + act[l])
            bias_act(<int>kinds[l], ws + act[l], P + offs[l], 1, sizes[l + 1])
        total += output_delta(<int>kinds[L - 1], lk, ws + act[L - 1], ws + dlt[L - 1], 1,
                              sizes[L], &Y[order[t], 0], NULL, 0)
        if opt == OPT_ADAM:
            lr_t = <floating>adam_lr(lr_d, mu_d, rho_d, <double>(t0 + t))
        # layers L-1 .. 1: the error terms below, and each layer's step
        for l in range(L - 1, 0, -1):
            n_in = sizes[l]
            n_out = qw[l]
            W = P + offs[l] + n_out
            rows_dot(W, n_in, n_out, ws + dlt[l], ws + act[l - 1], lr, sgd, ws + dlt[l - 1])
            if not sgd:
                outer_step(opt, W, S + offs[l] + n_out, S + NP + offs[l] + n_out, n_in, n_out,
                           ws + act[l - 1], ws + dlt[l], pen, lam, lr, mu, rho, eps, lr_t)
            mul_df(<int>kinds[l - 1], ws + dlt[l - 1], ws + act[l - 1], n_in)
            step_range(opt, P + offs[l], ws + dlt[l], S + offs[l], S + NP + offs[l], n_out, 1,
                       PEN_NONE, lam, lr, mu, rho, eps, lr_t, False)
        # layer 0: the step of sample t, and sample t+1's sums
        x = &X[order[t], 0]
        x2 = &X[order[t + 1], 0] if t + 1 < m else NULL
        step_range(opt, P + offs[0], ws + dlt[0], S + offs[0], S + NP + offs[0], n1, 1,
                   PEN_NONE, lam, lr, mu, rho, eps, lr_t, False)
        W = P + offs[0] + n1
        if sgd:
            c = nonzero_rows(x, x2, n0, idx) if skip else n0
            rows_sgd_forward(W, n1, ws + dlt[0], lr, x, x2 if x2 != NULL else x, rows, c, z)
        else:
            outer_step(opt, W, S + offs[0] + n1, S + NP + offs[0] + n1, n0, n1, x,
                       ws + dlt[0], pen, lam, lr, mu, rho, eps, lr_t)
            if x2 != NULL:
                c = nonzero_rows(x2, NULL, n0, idx) if skip else n0
                rows_forward(W, n1, x2, rows, c, z)
    return total


cdef double _online_typed(floating[::1] P, floating[::1] S, const int64_t[::1] sizes,
                          const int64_t[::1] offs, const int64_t[::1] qw,
                          const int64_t[::1] kinds, int lk,
                          const floating[:, ::1] X, const floating[:, ::1] Y,
                          const int64_t[::1] order, int opt, floating lr, floating mu,
                          floating rho, floating eps, int pen, floating lam, double lr_d,
                          double mu_d, double rho_d, Py_ssize_t t0, floating[::1] ws,
                          const int64_t[::1] act, const int64_t[::1] dlt, int32_t[::1] idx,
                          bint skip):
    cdef double total
    with nogil:
        total = online_train(&P[0], &S[0], sizes, offs, qw, kinds, lk, X, Y, order, opt, lr, mu,
                             rho, eps, pen, lam, lr_d, mu_d, rho_d, t0, &ws[0], act, dlt,
                             &idx[0], skip)
    return total


#: the layer-0 passes skip the zero inputs when the sampled density of X is at most this
#: (the union of two samples' non-zero inputs: 1 - (1 - 0.5)^2 = 75 % of the rows)
_SKIP_DENSITY = 0.5

#: an epoch of at least this many samples runs on a padded copy of the weights
_PAD_MIN_SAMPLES = 16


def _online_dense(lay, int loss_kind, params, X, Y, order, int opt, double lr, double mu,
                  double rho, double eps, int pen, double lam, state, Py_ssize_t t):
    """An online epoch on the dense path.  With ``_PAD_MIN_SAMPLES`` samples or more it runs
    on a copy of the weights (and the optimiser's state) in the padded layout of
    :func:`fastnet._params.padded_layout` (rows padded with zeros to whole 32-byte vectors,
    on 32-byte boundaries), copied back at the end: the row loops then have no scalar tail
    and no load split across cache lines.  Measured on the fused layer-0 pass alone
    (784 x 50 float32, AVX2, Zen 3): 3.8 us a pass padded to 56 and aligned, against 4.9
    to 6.5 us at 50; a 784 x 256 pass 16 bytes off its alignment costs 18 % more.  A whole
    epoch of 2,000 MNIST samples (AVX2): 784-50-10 1.27x faster standardised and 1.15x
    raw, 784-256-128-10 standardised 1.06x.  The padding is zeros and stays zeros (its
    error terms are zero), so the arithmetic of the real units is unchanged."""
    cdef Py_ssize_t NP = int(lay.offs[lay.L]), NQ = 0
    pad = order.shape[0] >= _PAD_MIN_SAMPLES
    if pad:
        qw, qoffs = padded_layout(lay.sizes, params.dtype.itemsize)
        NQ = int(qoffs[lay.L])
        P = aligned_zeros(NQ, params.dtype)
        S = aligned_zeros(2 * NQ, params.dtype)
        pad_into(params, lay.sizes, P, qw, qoffs)
        if opt != OPT_SGD:
            pad_into(state[:NP], lay.sizes, S[:NQ], qw, qoffs)
            pad_into(state[NP:], lay.sizes, S[NQ:], qw, qoffs)
    else:
        qw, qoffs, P, S = lay.sizes[1:].copy(), lay.offs, params, state
    _, act, dlt, _, size = _dense_plan(lay, 1, False, qw)
    ws = aligned_zeros(size, params.dtype)
    idx = np.empty(int(lay.sizes[0]) + 16, dtype=np.int32)
    skip = _paths.sample_density(X) <= _SKIP_DENSITY
    if params.dtype == np.float32:
        total = _online_typed[cython.float](P, S, lay.sizes, qoffs, qw, lay.kinds, loss_kind,
                                            X, Y, order, opt, lr, mu, rho, eps, pen, lam, lr,
                                            mu, rho, t, ws, act, dlt, idx, skip)
    else:
        total = _online_typed[cython.double](P, S, lay.sizes, qoffs, qw, lay.kinds, loss_kind,
                                             X, Y, order, opt, lr, mu, rho, eps, pen, lam, lr,
                                             mu, rho, t, ws, act, dlt, idx, skip)
    if pad:
        unpad_into(P, lay.sizes, qw, qoffs, params)
        if opt != OPT_SGD:
            unpad_into(S[:NQ], lay.sizes, qw, qoffs, state[:NP])
            unpad_into(S[NQ:], lay.sizes, qw, qoffs, state[NP:])
    return total
