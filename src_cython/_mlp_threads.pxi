# ------------------------------------------------------------------ threading policy
cdef int _num_threads = 0          # 0: OpenMP's default (OMP_NUM_THREADS, else the cores)
cdef double _min_work = 1e7        # multiply-adds per thread below which fewer threads are used
                                   # (fork/join and buffer sums cost more than they save
                                   # below ~0.4 ms of work per thread, measured on MNIST)
cdef double _min_elems = 32768.0   # elements per thread of the elementwise passes


# Small batches: threads or not, as measured (see _train); both give the same numbers.
cdef bint _adapt_parallel = True
cdef double _adapt_time = -1e300       # fastnet_wtime() of the last measurement
cdef double _ADAPT_PERIOD = 2.0         # seconds between measurements
cdef double _big_work = 3e7             # batch work above which threads are always used

#: multiply-adds a thread must get for a dense batch to be cut into chunks (a GEMM of ~0.1 ms)
cdef double _dense_min_work = 2e6
#: ... and rows: a chunk of fewer rows packs each weight matrix for too little work.  The
#: one case on MNIST's nets is 784-256-128-10 at batch 32 (two chunks of 16 rows); measured
#: there (AVX2 Zen 3, 2 cores, in-process, standardised inputs), the two chunks on threads
#: against one chunk of 32 rows: 158 ms against 212 ms an epoch in one run, 229 against 225
#: in another, and run on one thread (when the measurement below says so) two chunks cost up
#: to 1.4x one; the threads-or-not measurement picked the faster mode each time (171 and 236
#: ms), so 16 rows are allowed.  (Training batches of up to _split_max_rows rows, batch 32
#: among them, now cut their GEMMs in parts instead: this applies to bigger ones and to
#: backprop_batch / forward_network.)
cdef Py_ssize_t _dense_min_rows = 16
#: Small dense batches (at most _split_max_rows rows, at least _split_min_work multiply-adds)
#: run as one block whose GEMMs are cut in parts, one per thread (see _mlp_dense.pxi), instead
#: of chunks of rows: each thread then reads and writes its part of each weight matrix only,
#: and no gradient buffers are added up.  Measured on Zen 4 (2 cores), standardised MNIST, the
#: benchmark matrix's three nets, in-process against chunks of rows (or one thread): batch 32
#: 1.17x to 1.34x faster epochs, 48 1.09x to 1.16x, 64 0.93x to 1.14x, 128 0.80x to 0.99x
#: (then with the forward products cut by columns; see below for the limits now)
cdef Py_ssize_t _split_max_rows = 64
#: ... and batches of up to _split_max_rows_wide rows when each sample is at least
#: _split_wide_work multiply-adds.  Measured again once every product and the step went by
#: rows of W_l (_mlp_dense.pxi), Intel Xeon (AVX-512, 2 cores), MNIST raw and standardised,
#: in-process, chunks of rows / parts: batch 64 1.18 to 1.50 (all three nets); batch 128
#: 784-50-10 0.92, 784-128-10 1.02 to 1.04, 784-256-128-10 1.15 (numba's kernels: 1.40 to
#: 1.68 at 64; 0.90, 1.17, 1.29 at 128)
cdef Py_ssize_t _split_max_rows_wide = 128
cdef double _split_wide_work = 1e5
cdef double _split_min_work = 1e6
#: ... each part of a layer's GEMM with at least this many multiply-adds (else the layer
#: runs whole, on one thread)
cdef double _split_min_gemm = 1.5e5
# The measurement of threads against one thread for small batches (both paths), across
# calls (a full-batch epoch is one batch per call): 0 idle, 1 the next batch runs on one
# thread, 2 the next one on the threads; then the faster way (per multiply-add) is kept for
# _ADAPT_PERIOD seconds.
cdef int _dense_probe = 0
cdef double _dense_t_serial = 0
#: batches measured each way (after one that warms up), their count so far and their
#: seconds per multiply-add
cdef int _DENSE_PROBE_BATCHES = 8
cdef int _dense_probe_n = -1
cdef double _dense_probe_rates[8]      # _DENSE_PROBE_BATCHES
cdef double _dense_t_parallel = 0
#: the multiply-adds of the batches being measured: both ways must time the same work
cdef double _dense_probe_work = 0


def _dense_probe_result():
    """``(seconds per multiply-add on one thread, on the threads, threads chosen)`` of the
    dense path's last measurement (diagnostics)."""
    return _dense_t_serial, _dense_t_parallel, bool(_adapt_parallel)


def _set_threading(num_threads=None, min_work=None, min_elems=None, big_work=None,
                   small_batches=None, dense_min_work=None, dense_min_rows=None,
                   split_max_rows=None, split_min_work=None, split_min_gemm=None,
                   split_max_rows_wide=None):
    """Set the thread policy (tests and benchmarks); returns the previous settings as a
    dict, which ``_set_threading(**old)`` restores.

    ``num_threads``: 0 means OpenMP's default.  ``min_work``: the work (multiply-adds) a
    thread must get for a batch of the sparse path to be cut into chunks
    (``dense_min_work``: of the dense path, whose chunks also need ``dense_min_rows``
    rows each; ``split_max_rows``, ``split_max_rows_wide``, ``split_min_work``,
    ``split_min_gemm``: the small dense batches whose GEMMs are cut in parts instead);
    ``min_elems``: the same for the
    elementwise optimiser pass.  ``big_work``: batches of the sparse path with more work
    always run their chunks on threads; smaller ones (every batch of the dense path) do
    when measured faster, or as ``small_batches`` says (True: threads, False: one thread;
    None: measure).  The numbers computed depend only on the number of chunks, never on
    how they were run.
    """
    global _num_threads, _min_work, _min_elems, _big_work, _adapt_parallel, _adapt_time
    global _dense_min_work, _dense_probe, _dense_probe_n
    global _dense_min_rows, _split_max_rows, _split_min_work, _split_min_gemm
    global _split_max_rows_wide
    old = dict(num_threads=_num_threads, min_work=_min_work, min_elems=_min_elems,
               big_work=_big_work, small_batches=None if _adapt_time < 1e300
               else bool(_adapt_parallel), dense_min_work=_dense_min_work,
               dense_min_rows=_dense_min_rows, split_max_rows=_split_max_rows,
               split_min_work=_split_min_work, split_min_gemm=_split_min_gemm,
               split_max_rows_wide=_split_max_rows_wide)
    if split_max_rows is not None:
        _split_max_rows = int(split_max_rows)
    if split_max_rows_wide is not None:
        _split_max_rows_wide = int(split_max_rows_wide)
    if split_min_work is not None:
        _split_min_work = float(split_min_work)
    if split_min_gemm is not None:
        _split_min_gemm = float(split_min_gemm)
    if dense_min_work is not None:
        _dense_min_work = float(dense_min_work)
    if dense_min_rows is not None:
        _dense_min_rows = int(dense_min_rows)
    _dense_probe = 0
    _dense_probe_n = -1
    if num_threads is not None:
        _num_threads = int(num_threads)
    if min_work is not None:
        _min_work = float(min_work)
    if min_elems is not None:
        _min_elems = float(min_elems)
    if big_work is not None:
        _big_work = float(big_work)
    if small_batches is None:
        if _adapt_time >= 1e300:      # was fixed: measure again
            _adapt_time = -1e300
    else:
        _adapt_parallel = bool(small_batches)
        _adapt_time = 1e300           # never re-measured
    return old


def _plan_chunks(n_items, work_per_item, min_work=None):
    """``(chunks, threads)`` the policy gives ``n_items`` items of ``work_per_item``
    multiply-adds (used by the other extension modules); ``min_work``: the work a thread
    must get (default: the batches' ``min_work``)."""
    cdef int tmax = _max_threads()
    cdef int C
    if min_work is None:
        C = _chunks_for(n_items, work_per_item, tmax)
    else:
        C = _threads_for(n_items, work_per_item, float(min_work), tmax)
    return C, min(C, tmax)


def openmp_enabled():
    """Whether this extension was compiled with OpenMP (else every loop runs serially)."""
    return bool(FASTNET_HAVE_OPENMP)


cdef int _max_threads() noexcept nogil:
    if not FASTNET_HAVE_OPENMP:
        return 1
    if _num_threads > 0:
        return _num_threads
    return max(1, fastnet_omp_max_threads())


cdef int _threads_for(Py_ssize_t n_items, double work_per_item, double min_work,
                      int tmax) noexcept nogil:
    """Threads for ``n_items`` items of ``work_per_item``: at most ``tmax`` and one per item,
    each with at least ``min_work``."""
    cdef int T = tmax
    if T > n_items:
        T = <int>n_items
    while T > 1 and n_items * work_per_item < T * min_work:
        T -= 1
    return T if T > 1 else 1


cdef int _MAX_CHUNKS = 16               # chunks of a big batch (dynamically scheduled)
cdef Py_ssize_t _CHUNK_SAMPLES = 64      # ... of at least this many samples


cdef int _chunks_for(Py_ssize_t b, double work, int tmax) noexcept nogil:
    """Chunks a batch of ``b`` samples (``work`` multiply-adds each) is cut into, each summing
    its gradients in its own buffer; the buffers are added in chunk order.

    One chunk when there is not enough work for two threads; one per thread for small
    batches; up to ``_MAX_CHUNKS`` for big ones, handed out to the threads as they come
    free (a thread slowed down by another process then does fewer).  Depends on the sizes
    and the thread count only, so results are reproducible for a given thread count.
    """
    cdef int C = _threads_for(b, work, _min_work, tmax)
    cdef Py_ssize_t by_size
    if C > 1 and b * work >= _big_work:
        by_size = b // _CHUNK_SAMPLES
        C = <int>min(<Py_ssize_t>_MAX_CHUNKS, max(<Py_ssize_t>C, by_size))
    return C


cdef int dense_chunks_for(Py_ssize_t b, double work, int tmax) noexcept nogil:
    """Chunks of a dense batch of ``b`` samples (``work`` multiply-adds each): one per thread,
    as many threads as get at least ``_dense_min_work`` and ``_dense_min_rows`` rows each
    (two equal chunks make the most of two idle cores; on busy ones the batch runs on one
    thread, as measured)."""
    cdef int T = _threads_for(b, work, _dense_min_work, tmax)
    while T > 1 and b < T * _dense_min_rows:
        T -= 1
    return T


cdef int dense_parts_for(Py_ssize_t b, double work, int tmax) noexcept nogil:
    """The parts each GEMM of a small dense batch (``b`` samples of ``work`` multiply-adds)
    is cut into, one per thread; 1: the batch is cut into chunks of rows instead
    (:func:`dense_chunks_for`)."""
    if tmax <= 1 or b * work < _split_min_work:
        return 1
    if b <= _split_max_rows or (b <= _split_max_rows_wide and work >= _split_wide_work):
        return tmax
    return 1


def _dense_parts(Py_ssize_t b, double work):
    """:func:`dense_parts_for` with this module's thread count (tests)."""
    return dense_parts_for(b, work, _max_threads())


cdef inline bint dense_always_threads(double work) noexcept nogil:
    """Whether a dense call of ``work`` multiply-adds runs its chunks on the threads without
    measuring: from ``_big_work`` up, unless the policy was fixed (``_set_threading``)."""
    return work >= _big_work and _adapt_time < 1e300


cdef inline bint dense_threads_for(double work) noexcept nogil:
    """Whether a dense call of ``work`` multiply-adds (not measured) runs its chunks on the
    threads: as last measured, or :func:`dense_always_threads`."""
    return _adapt_parallel or dense_always_threads(work)


cdef bint small_batch_threads_begin(double batch_work) noexcept nogil:
    """Whether the next small batch (of several chunks, ``batch_work`` multiply-adds; on the
    sparse path below ``_big_work``) runs them on the threads.  Dense batches of at least
    ``_big_work`` always do, as on the sparse path: measuring one of them on one thread
    costs a whole epoch at full batch (measured, 784-50-10 full batch of 8,000: 29 ms an
    epoch with the probe against 20 ms on the threads, and 37 ms on one thread)."""
    global _dense_probe
    if dense_always_threads(batch_work):
        return True
    if _dense_probe == 0 and fastnet_wtime() - _adapt_time > _ADAPT_PERIOD:
        _dense_probe = 1
    return _dense_probe == 2 or (_dense_probe == 0 and _adapt_parallel)


cdef double _median_rate(double* r, int n) noexcept nogil:
    """The median of ``r[:n]`` (sorted in place)."""
    cdef int i, j
    cdef double v
    for i in range(1, n):
        v = r[i]
        j = i
        while j > 0 and r[j - 1] > v:
            r[j] = r[j - 1]
            j -= 1
        r[j] = v
    return 0.5 * (r[(n - 1) // 2] + r[n // 2])


cdef inline bint probe_picks_threads(double t_serial, double t_parallel) noexcept nogil:
    """The measurement's choice from the two median times per multiply-add: the threads,
    unless one thread was measured at least 10 % faster.

    The batches that reach the measurement are already big enough to cut (the thresholds
    above), so the threads are the default and one thread must prove itself.  Until
    2026-12-03 the rule was the other way round (the threads had to be 10 % faster), and on
    a shared 2-core machine the probe's medians are noisy: on Zen 2 (AMD EPYC family 23
    model 49), standardised 784-128-10 at batch 128, twelve probes gave ratios (threads /
    one thread) of 0.52 to 0.93, so now and then one thread was picked and kept for
    _ADAPT_PERIOD, while whole epochs ran 32.5 ms on the threads against 59.4 ms on one (at
    batch 32 on the parts path: 70.3 against 86.3 ms, probe ratios 0.88 to 1.09).  One
    thread is faster when the other core is taken by another process: then a batch on the
    threads waits for the descheduled one, far beyond 10 %."""
    return not (t_serial < 0.9 * t_parallel)


def _probe_batch(double work, double seconds):
    """Feed the threads-or-not measurement one batch of ``work`` multiply-adds that took
    ``seconds`` (tests): returns ``(threads, state)``, whether the batch was to run on the
    threads and the measurement's state after it (0 idle, 1 timing one thread, 2 timing the
    threads)."""
    threads = small_batch_threads_begin(work)
    small_batch_threads_end(seconds, work)
    return bool(threads), int(_dense_probe)


def _probe_choice(double t_serial, double t_parallel):
    """:func:`probe_picks_threads` (tests): whether measured times per multiply-add of
    ``t_serial`` on one thread and ``t_parallel`` on the threads choose the threads."""
    return bool(probe_picks_threads(t_serial, t_parallel))


cdef void small_batch_threads_end(double seconds, double work) noexcept nogil:
    """Record a batch's time (``work`` multiply-adds) while measuring: after one batch that
    warms up, ``_DENSE_PROBE_BATCHES`` batches on one thread, then as many on the threads,
    compared by their median time per multiply-add.  (One batch each way was too few: the
    first batch on the threads pays their wake-up, and a batch of 128 is ~0.2 ms, so the
    choice flipped between runs; measured on raw 784-128-10 at batch 128: 39 ms an epoch
    in one run, 56 to 73 ms in the next, against 39 ms with the threads forced.  The
    medians, not the totals: on this shared machine one batch descheduled for a time slice
    outweighs the other seven of a total, and then picked one thread for the next 2 s.)"""
    global _dense_probe, _dense_t_serial, _adapt_parallel, _adapt_time
    global _dense_probe_n, _dense_t_parallel, _dense_probe_work
    if _dense_probe == 0:
        return
    if _dense_probe == 1 and _dense_probe_n < 0:
        _dense_probe_work = work
    elif fabs(work - _dense_probe_work) > 0.01 * _dense_probe_work:
        # Another workload (another network or batch size, or an epoch's short last batch):
        # the time per multiply-add of a small GEMM is not that of a big one, so the two ways
        # must be timed on the same work.  Start again on this one.  (Found on Zen 2: one
        # thread timed on 784-256-128-10 at batch 128, the end of one call, then the threads
        # on 784-50-10 at batch 32, the next call: one thread was picked for 2 s, 1.4x
        # slower epochs.)
        _dense_probe = 1
        _dense_probe_n = 0      # this batch was the warm-up of the new measurement
        _dense_probe_work = work
        return
    if _dense_probe_n < 0:  # the first batch of each way warms up (threads wake, caches)
        _dense_probe_n += 1
        return
    _dense_probe_rates[_dense_probe_n] = seconds / work if work > 0 else 0
    _dense_probe_n += 1
    if _dense_probe_n < _DENSE_PROBE_BATCHES:
        return
    if _dense_probe == 1:
        _dense_t_serial = _median_rate(_dense_probe_rates, _DENSE_PROBE_BATCHES)
        _dense_probe = 2
    else:
        _dense_t_parallel = _median_rate(_dense_probe_rates, _DENSE_PROBE_BATCHES)
        _adapt_parallel = probe_picks_threads(_dense_t_serial, _dense_t_parallel)
        _adapt_time = fastnet_wtime()
        _dense_probe = 0
    _dense_probe_n = -1
