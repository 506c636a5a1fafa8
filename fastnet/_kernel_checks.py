"""Argument checks for the wrappers of the compiled kernels (every compiled backend).

The public API validates and converts its inputs before calling a kernel, so
these checks should never fire in normal use; they make a direct call with a
wrong array (wrong dtype, not C-contiguous, inconsistent shapes) fail with a
``TypeError``/``ValueError`` that names the kernel and the argument, instead
of a memoryview error or, worse, a read out of bounds in a ``nogil`` loop
compiled without bounds checking.

Everything here runs once per kernel call, never per sample.
"""
import numbers

import numpy as np

from fastnet._codes import Act, Loss, Penalty, Optimizer

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_I64 = np.dtype(np.int64)


def float_array(kernel, name, arr, ndim=None, dtype=None):
    """``arr`` as a C-contiguous float32/float64 ndarray of ``ndim`` dims (and ``dtype``)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype not in _FLOATS:
        raise TypeError(f"{kernel}: {name} must have dtype float32 or float64, got {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{kernel}: {name} has dtype {arr.dtype}, expected {np.dtype(dtype)} "
                        f"(every float array of one call shares one dtype)")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D, got shape {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{kernel}: {name} must be C-contiguous (use np.ascontiguousarray)")
    return arr


def writable(kernel, name, arr):
    if not arr.flags.writeable:
        raise ValueError(f"{kernel}: {name} is written in place but is read-only")
    return arr


def int_array(kernel, name, arr, ndim=1):
    """``arr`` as a C-contiguous int64 ndarray of ``ndim`` dims."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != _I64:
        raise TypeError(f"{kernel}: {name} must have dtype int64, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D, got shape {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{kernel}: {name} must be C-contiguous")
    return arr


def shape(kernel, name, arr, expected):
    if arr.shape != tuple(expected):
        raise ValueError(f"{kernel}: {name} has shape {arr.shape}, expected {tuple(expected)}")


def code(kernel, name, value, allowed):
    """An integer code among ``allowed`` (a dict code -> meaning)."""
    if type(value) is int and value in allowed:  # the common case, without the ABC checks
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{kernel}: {name} must be an integer code, got {value!r}")
    value = int(value)
    if value not in allowed:
        choices = ", ".join(f"{k} ({v})" for k, v in allowed.items())
        raise ValueError(f"{kernel}: {name} must be one of {choices}; got {value}")
    return value


def integer(kernel, name, value, lo):
    if type(value) is int and value >= lo:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{kernel}: {name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo:
        raise ValueError(f"{kernel}: {name} must be >= {lo}, got {value}")
    return value


def real(kernel, name, value):
    if type(value) is float:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{kernel}: {name} must be a real number, got {value!r}")
    return float(value)


# code -> name of every kernel code (the enums of fastnet._codes), for the messages
ACTIVATIONS = {int(c): c.name.lower() for c in Act}
LOSSES = {int(c): c.name.lower() for c in Loss}
PENALTIES = {int(c): c.name.lower() for c in Penalty}
OPTIMIZERS = {int(c): c.name.lower() for c in Optimizer}


#: checked layer widths (their bytes) -> their offsets into params, read-only (an epoch loop
#: checks the same network on every call); callers never write to them
_OFFSETS = {}


def network_shape(kernel, params, sizes):
    """Check the layer widths ``sizes`` and the flat ``params``; return ``(sizes, offsets)``."""
    sizes = int_array(kernel, "sizes", sizes)
    key = sizes.tobytes()
    offs = _OFFSETS.get(key)
    if offs is None:
        if sizes.shape[0] < 2:
            raise ValueError(f"{kernel}: sizes must hold at least 2 layer widths, got {sizes}")
        if (sizes < 1).any():
            raise ValueError(f"{kernel}: every layer width in sizes must be >= 1, got {sizes}")
        offs = np.zeros(sizes.shape[0], dtype=np.int64)
        np.cumsum((sizes[:-1] + 1) * sizes[1:], out=offs[1:])
        if len(_OFFSETS) >= 64:
            _OFFSETS.clear()
        _OFFSETS[key] = offs
    float_array(kernel, "params", params, ndim=1)
    if params.shape[0] != offs[-1]:
        raise ValueError(f"{kernel}: params has {params.shape[0]} entries, expected "
                         f"{int(offs[-1])} for layer widths {sizes.tolist()}")
    return sizes, offs


class Layout:
    """A checked network: ``sizes``, ``kinds``, per-layer offsets ``offs`` into ``params``
    ``aoff`` of the layers' activations within one sample's slot (layer ``l``'s output at
    ``aoff[l]``, each layer padded to 16 entries; ``aoff[L]`` = the slot's size) and
    ``noff`` of each layer's list of non-zero inputs in the index workspace."""

    __slots__ = ("sizes", "kinds", "offs", "aoff", "noff", "n_params", "segments", "L", "_key",
                 "_ready")

    #: elements per segment of the parallel optimiser pass
    SEGMENT = 4096

    #: checked layouts by the bytes of (sizes, kinds): an epoch loop calls its kernel with
    #: the same network every time, and checking it anew cost ~0.1 ms a call (measured: 13 %
    #: of a 1.5 ms digits epoch); ``params`` is still checked on every call
    _cache = {}
    _CACHE_SIZE = 64

    def __new__(cls, kernel, params, sizes, kinds):
        key = None
        if all(isinstance(a, np.ndarray) and a.dtype == _I64 and a.ndim == 1
               and a.flags.c_contiguous for a in (sizes, kinds)):
            key = (sizes.tobytes(), kinds.tobytes())
            hit = cls._cache.get(key)
            if hit is not None:
                float_array(kernel, "params", params, ndim=1)
                if params.shape[0] != hit.n_params:
                    raise ValueError(f"{kernel}: params has {params.shape[0]} entries, expected "
                                     f"{hit.n_params} for layer widths {hit.sizes.tolist()}")
                return hit
        obj = super().__new__(cls)
        obj._key, obj._ready = key, False
        return obj

    def __init__(self, kernel, params, sizes, kinds):
        if self._ready:  # from the cache (__new__ checked params)
            return
        self._init(kernel, params, sizes, kinds)
        self._ready = True
        if self._key is not None:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[self._key] = self

    def _init(self, kernel, params, sizes, kinds):
        sizes, offs = network_shape(kernel, params, sizes)
        kinds = int_array(kernel, "kinds", kinds)
        L = sizes.shape[0] - 1
        if kinds.shape[0] != L:
            raise ValueError(f"{kernel}: kinds has {kinds.shape[0]} entries, expected one per "
                             f"layer ({L})")
        if ((kinds < 0) | (kinds > max(ACTIVATIONS))).any():
            raise ValueError(f"{kernel}: kinds must be activation codes 0..{max(ACTIVATIONS)} "
                             f"({', '.join(f'{k} {v}' for k, v in ACTIVATIONS.items())}), got {kinds}")
        if (kinds[:-1] == Act.SOFTMAX).any():
            raise ValueError(f"{kernel}: softmax (4) is allowed only as the last layer's "
                             f"activation, got kinds {kinds}")
        # copies: a cached layout must not change when the caller's arrays do
        self.sizes, self.kinds, self.offs, self.L = sizes.copy(), kinds.copy(), offs, L
        self.n_params = int(offs[-1])
        # each layer's slot rounded up to 16 entries (whole 64-byte vectors of float32)
        aoff = np.zeros(L + 1, dtype=np.int64)
        np.cumsum((sizes[1:] + 15) // 16 * 16, out=aoff[1:])
        self.aoff = aoff
        # the non-zero input lists of each layer (an index buffer: its width + 16)
        noff = np.zeros(L + 1, dtype=np.int64)
        np.cumsum(sizes[:-1] + 16, out=noff[1:])
        self.noff = noff
        self.segments = None

    def segs(self):
        """Rows ``(lo, hi, penalised)`` cutting ``params`` into bias rows and weight chunks."""
        if self.segments is None:
            rows = []
            for l in range(self.L):
                off, n_out = int(self.offs[l]), int(self.sizes[l + 1])
                rows.append((off, off + n_out, 0))
                for lo in range(off + n_out, int(self.offs[l + 1]), self.SEGMENT):
                    rows.append((lo, min(lo + self.SEGMENT, int(self.offs[l + 1])), 1))
            self.segments = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return self.segments


_SOFTMAX, _LOG_LOSS = int(Act.SOFTMAX), int(Loss.LOG_LOSS)  # (an enum's attribute costs ~1 us)


def loss_pair(kernel, loss_kind, kinds):
    loss_kind = code(kernel, "loss_kind", loss_kind, LOSSES)
    if kinds[-1] == _SOFTMAX and loss_kind != _LOG_LOSS:
        raise ValueError(f"{kernel}: a softmax output layer needs loss_kind 2 (log-loss), "
                         f"got {loss_kind} ({LOSSES[loss_kind]})")
    return loss_kind


def data(kernel, layout, X, Y=None, dtype=None):
    """Check ``X`` (m, n0) and ``Y`` (m, nL) against the network."""
    float_array(kernel, "X", X, ndim=2, dtype=dtype)
    if X.shape[1] != layout.sizes[0]:
        raise ValueError(f"{kernel}: X has {X.shape[1]} columns, expected the input width "
                         f"{int(layout.sizes[0])}")
    if Y is not None:
        float_array(kernel, "Y", Y, ndim=2, dtype=dtype)
        shape(kernel, "Y", Y, (X.shape[0], int(layout.sizes[-1])))


# ------------------------------------------------------------------------------- word2vec
#: Largest ``window`` / ``negative`` a word2vec kernel takes (their buffers are indexed by C ints).
W2V_MAX_COUNT = (1 << 30) - 1

_W2V_ARRAYS = (("syn0", np.float32, 2), ("syn1neg", np.float32, 2), ("words", np.int32, 1),
               ("sent_offsets", np.int64, 1), ("sample_int", np.uint32, 1),
               ("cum_table", np.int64, 1), ("guide", np.int32, 1))


def word2vec_job(kernel, syn0, syn1neg, words, sent_offsets, sent_begin, sent_end, sample_int,
                 cum_table, guide, negative, window, alpha_begin, alpha_end):
    """Check the arguments of a word2vec job (``w2v_sg_batch``, ``w2v_cbow_batch``).

    Everything a kernel indexes with is checked, so that no argument can make it
    read or write out of bounds: dtypes, contiguity, the vocabulary size ``V``
    shared by ``syn0``/``syn1neg``/``sample_int``/``cum_table``, the job's
    sentence range and offsets (non-decreasing, inside ``words``), the word
    indices of the job (``0 <= w < V``), ``cum_table[-1] == 2**31`` (which
    bounds every noise draw), a power-of-two ``guide``.  Its cost is one pass
    over the job's words and sentence offsets.

    Returns
    -------
    (int, int, int, int)
        ``sent_begin, sent_end, negative, window`` as Python ints.
    """
    arrays = (syn0, syn1neg, words, sent_offsets, sample_int, cum_table, guide)
    for (name, dt, nd), arr in zip(_W2V_ARRAYS, arrays):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
        if arr.dtype != dt or arr.ndim != nd:
            raise TypeError(f"{kernel}: {name} must be a {nd}-D {np.dtype(dt).name} array, got "
                            f"{arr.ndim}-D {arr.dtype}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{kernel}: {name} must be C-contiguous (use np.ascontiguousarray)")
    writable(kernel, "syn0", syn0)
    writable(kernel, "syn1neg", syn1neg)
    V, d = syn0.shape
    if V == 0 or d == 0:
        raise ValueError(f"{kernel}: syn0 must have at least one word and one dimension, got "
                         f"shape {syn0.shape}")
    if d > (1 << 31) - 1:
        raise ValueError(f"{kernel}: vectors of {d} dimensions are too long (at most 2**31 - 1)")
    shape(kernel, "syn1neg", syn1neg, syn0.shape)
    shape(kernel, "sample_int", sample_int, (V,))
    shape(kernel, "cum_table", cum_table, (V,))
    if int(cum_table[V - 1]) != 1 << 31:
        raise ValueError(f"{kernel}: cum_table[-1] must be 2**31 (see make_cum_table), got "
                         f"{int(cum_table[V - 1])}")
    g = guide.shape[0]
    if g == 0 or g & (g - 1) or g > 1 << 31:
        raise ValueError(f"{kernel}: guide must have a power-of-two length (see make_guide), "
                         f"got {g}")
    sent_begin = integer(kernel, "sent_begin", sent_begin, 0)
    sent_end = integer(kernel, "sent_end", sent_end, 0)
    n_sent = sent_offsets.shape[0] - 1
    if not sent_begin <= sent_end <= n_sent:
        raise ValueError(f"{kernel}: sentences {sent_begin}:{sent_end} out of range for "
                         f"{max(n_sent, 0)} sentences (len(sent_offsets) - 1)")
    negative = integer(kernel, "negative", negative, 1)
    window = integer(kernel, "window", window, 1)
    for name, value in (("negative", negative), ("window", window)):
        if value > W2V_MAX_COUNT:
            raise ValueError(f"{kernel}: {name} must be at most {W2V_MAX_COUNT}, got {value}")
    for name, value in (("alpha_begin", alpha_begin), ("alpha_end", alpha_end)):
        if not np.isfinite(real(kernel, name, value)):
            raise ValueError(f"{kernel}: {name} must be finite, got {value!r}")
    if sent_end > sent_begin:
        offs = sent_offsets[sent_begin:sent_end + 1]
        lo, hi = int(offs[0]), int(offs[-1])
        if lo < 0 or hi > words.shape[0] or (offs[1:] < offs[:-1]).any():
            raise ValueError(f"{kernel}: sent_offsets[{sent_begin}:{sent_end + 1}] must be "
                             f"non-decreasing offsets into words (0..{words.shape[0]})")
        if hi > lo:
            job = words[lo:hi]
            w_min, w_max = int(job.min()), int(job.max())
            if w_min < 0 or w_max >= V:
                raise ValueError(f"{kernel}: words holds the index "
                                 f"{w_min if w_min < 0 else w_max}, outside the vocabulary "
                                 f"0..{V - 1}")
    return sent_begin, sent_end, negative, window


def state_array(kernel, state, n, dtype):
    """The optimiser state: C-contiguous, 1-D, ``2 * n`` entries of ``dtype`` (the contract)."""
    writable(kernel, "state", float_array(kernel, "state", state, ndim=1, dtype=dtype))
    if state.shape[0] != 2 * n:
        raise ValueError(f"{kernel}: state has {state.shape[0]} entries, expected 2 * {n} = "
                         f"{2 * n} (two per parameter)")
    return state


def order_array(kernel, order, m):
    """The sample indices of an epoch: int64, 1-D, every entry in ``[0, m)``."""
    int_array(kernel, "order", order)
    # one reduction: a negative index read as uint64 is >= 2**63, above any m
    if order.size and int(order.view(np.uint64).max()) >= m:
        raise ValueError(f"{kernel}: order must hold row indices of X in [0, {m}), got values "
                         f"in [{int(order.min())}, {int(order.max())}]")
    return order


def linear_data(kernel, X, y, theta, theta_name="theta"):
    """``X`` (m, n), ``y`` (m,) and the weights ``theta`` (n + 1,) of a linear model, one dtype."""
    float_array(kernel, "X", X, ndim=2)
    float_array(kernel, "y", y, ndim=1, dtype=X.dtype)
    shape(kernel, "y", y, (X.shape[0],))
    writable(kernel, theta_name, float_array(kernel, theta_name, theta, ndim=1, dtype=X.dtype))
    shape(kernel, theta_name, theta, (X.shape[1] + 1,))


def history_array(kernel, name, arr, n, dtype):
    """An output array with room for ``n`` entries of ``dtype`` (1-D, C-contiguous)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{kernel}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"{kernel}: {name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    if arr.ndim != 1 or not arr.flags.c_contiguous:
        raise ValueError(f"{kernel}: {name} must be a 1-D C-contiguous array, got shape "
                         f"{arr.shape}")
    writable(kernel, name, arr)
    if arr.shape[0] < n:
        raise ValueError(f"{kernel}: {name} has {arr.shape[0]} entries, expected at least {n}")
    return arr


def epochs_buffers(kernel, params, order, m, rng, backup, run, costs, times):
    """The arguments ``train_epochs`` adds to ``train_epoch``'s: the order (int64, ``(m,)``,
    a valid order, writable when ``rng`` shuffles it), ``rng`` (None, a
    ``numpy.random.Generator`` or ``RandomState``), ``backup`` (``3 P`` of params' dtype),
    ``run`` (float64, ``Run.WIDTH``), ``costs`` (float64, ``(E,)``) and ``times`` (float64,
    ``(E, 3)``).
    Returns ``E``, the most epochs to run."""
    from fastnet._codes import Run, Stop
    int_array(kernel, "order", order)
    shape(kernel, "order", order, (m,))
    order_array(kernel, order, m)
    if rng is not None:
        if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
            raise TypeError(f"{kernel}: rng must be None, a numpy.random.Generator or a "
                            f"RandomState, got {type(rng).__name__}")
        writable(kernel, "order", order)
    writable(kernel, "backup", float_array(kernel, "backup", backup, ndim=1, dtype=params.dtype))
    shape(kernel, "backup", backup, (3 * params.shape[0],))
    for name, arr, ndim in (("run", run, 1), ("costs", costs, 1), ("times", times, 2)):
        writable(kernel, name, float_array(kernel, name, arr, ndim=ndim, dtype=np.float64))
    shape(kernel, "run", run, (int(Run.WIDTH),))
    E = costs.shape[0]
    shape(kernel, "times", times, (E, 3))
    if run[Run.STOP] not in [int(s) for s in Stop]:
        raise ValueError(f"{kernel}: run[Run.STOP] must be one of "
                         f"{', '.join(f'{int(s)} ({s.name.lower()})' for s in Stop)}; "
                         f"got {run[Run.STOP]}")
    if m < 1:
        raise ValueError(f"{kernel}: X has no samples (an epoch needs at least one)")
    return E
