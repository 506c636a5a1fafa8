"""Word2vec kernels: every backend against the reference, and the reference against the math."""
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from fastnet.reference import word2vec_kernels as R
from conftest import BACKENDS, COMPILED, REPO, kernels_of, assert_close


def _problem(seed, V=30, d=17, n_words=400, sample=1e-2, n_sent=6):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.integers(1, 100, V))[::-1].astype(np.int64)
    words = rng.choice(V, size=n_words, p=counts / counts.sum()).astype(np.int32)
    cuts = np.sort(rng.choice(np.arange(n_words + 1), size=n_sent - 1, replace=True))
    offsets = np.concatenate([[0], cuts, [n_words]]).astype(np.int64)
    syn0 = ((rng.random((V, d)) - 0.5) / d).astype(np.float32)
    syn1 = (rng.random((V, d)) * 0.1 - 0.05).astype(np.float32)
    si = R.sample_ints(counts, sample)
    cum = R.make_cum_table(counts)
    return dict(syn0=syn0, syn1=syn1, words=words, offsets=offsets, si=si, cum=cum,
                guide=R.make_guide(cum))


def _run(backend, kind, p, negative=5, window=3, shrink=True, cbow_mean=1, a0=0.05, a1=0.01,
         seed=12345, exact=True, loss=True, begin=0, end=None):
    k = kernels_of(backend)
    syn0, syn1 = p["syn0"].copy(), p["syn1"].copy()
    end = p["offsets"].shape[0] - 1 if end is None else end
    if kind == "sg":
        res = k.w2v_sg_batch(syn0, syn1, p["words"], p["offsets"], begin, end, p["si"], p["cum"],
                             p["guide"], negative, window, shrink, a0, a1, seed, exact, loss)
    else:
        res = k.w2v_cbow_batch(syn0, syn1, p["words"], p["offsets"], begin, end, p["si"],
                               p["cum"], p["guide"], negative, window, shrink, cbow_mean, a0, a1,
                               seed, exact, loss)
    return syn0, syn1, res


KINDS = [("sg", 1), ("cbow", 1), ("cbow", 0)]


@pytest.mark.parametrize("kind,cbow_mean", KINDS)
@pytest.mark.parametrize("backend", COMPILED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no compiled backend"))])
def test_parity_exact_sigmoid(backend, kind, cbow_mean):
    """One pass over a small corpus: compiled == reference within 1e-5, same draws."""
    p = _problem(0)
    s0, s1, (r, eff, loss) = _run(backend, kind, p, cbow_mean=cbow_mean)
    e0, e1, (er, eeff, eloss) = _run("reference", kind, p, cbow_mean=cbow_mean)
    msg = f"{kind} (cbow_mean={cbow_mean}) on {backend}"
    assert not np.array_equal(e0, p["syn0"]), "the reference did not train"
    assert (r, eff) == (er, eeff), msg + ": different random draws"
    assert_close(s0, e0, err_msg=msg + ": syn0")
    assert_close(s1, e1, err_msg=msg + ": syn1neg")
    assert math.isclose(loss, eloss, rel_tol=1e-5), msg + ": loss"


@pytest.mark.parametrize("kind,cbow_mean", KINDS)
@pytest.mark.parametrize("backend", COMPILED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no compiled backend"))])
def test_parity_sigmoid_table(backend, kind, cbow_mean):
    """The default (table) sigmoid gives the same training as the reference's table."""
    p = _problem(1)
    s0, s1, (r, eff, loss) = _run(backend, kind, p, cbow_mean=cbow_mean, exact=False, loss=False)
    e0, e1, (er, eeff, eloss) = _run("reference", kind, p, cbow_mean=cbow_mean, exact=False,
                                     loss=False)
    assert (r, eff, loss) == (er, eeff, 0.0)
    assert_close(s0, e0, rtol=1e-4, err_msg=f"{kind} table sigmoid on {backend}: syn0")
    assert_close(s1, e1, rtol=1e-4, err_msg=f"{kind} table sigmoid on {backend}: syn1neg")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), V=st.integers(1, 25), d=st.integers(1, 21),
       negative=st.integers(1, 7), window=st.integers(1, 5), shrink=st.booleans(),
       sample=st.sampled_from([0.0, 1e-2, 0.3]), kind=st.sampled_from(KINDS),
       n_sent=st.integers(1, 5))
def test_parity_hypothesis(seed, V, d, negative, window, shrink, sample, kind, n_sent):
    """Random sizes (register-block remainders, V=1, tiny windows) on every compiled backend."""
    p = _problem(seed % 1000, V=V, d=d, n_words=60, sample=sample, n_sent=n_sent)
    ref = _run("reference", kind[0], p, negative=negative, window=window, shrink=shrink,
               cbow_mean=kind[1], seed=seed)
    for backend in COMPILED:
        got = _run(backend, kind[0], p, negative=negative, window=window, shrink=shrink,
                   cbow_mean=kind[1], seed=seed)
        msg = f"{kind} on {backend}, V={V} d={d} negative={negative} window={window}"
        assert got[2][:2] == ref[2][:2], msg
        assert_close(got[0], ref[0], err_msg=msg)
        assert_close(got[1], ref[1], err_msg=msg)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["sg", "cbow"])
def test_empty_job_and_subrange(backend, kind):
    p = _problem(2)
    s0, s1, res = _run(backend, kind, p, begin=3, end=3)
    assert res == (12345, 0, 0.0)
    np.testing.assert_array_equal(s0, p["syn0"])
    np.testing.assert_array_equal(s1, p["syn1"])
    # a job is only its sentences: rows of words outside them are untouched (syn0 side)
    p["si"][:] = 2**32 - 1
    s0, s1, (_, eff, _) = _run(backend, kind, p, begin=1, end=2)
    o = p["offsets"]
    assert eff == o[2] - o[1]
    outside = np.setdiff1d(np.arange(p["syn0"].shape[0]), p["words"][o[1]:o[2]])
    np.testing.assert_array_equal(s0[outside], p["syn0"][outside])


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic(backend):
    p = _problem(3)
    a = _run(backend, "sg", p, exact=False)
    b = _run(backend, "sg", p, exact=False)
    c = _run(backend, "sg", p, exact=False, seed=999)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


# ------------------------------------------------------------------ the reference vs the math
def _manual_draws(state, n):
    out = []
    for _ in range(n):
        out.append(R.rand32(state))
        state = R.lcg_next(state)
    return out, state


def test_reference_follows_the_contract_by_hand():
    """Sentence [0, 1], window 1, no subsampling: redo the draws and the updates by hand."""
    V, d = 4, 3
    rng = np.random.default_rng(5)
    syn0 = rng.normal(0, 0.5, (V, d)).astype(np.float32)
    syn1 = rng.normal(0, 0.5, (V, d)).astype(np.float32)
    counts = np.array([5, 4, 3, 2])
    cum = R.make_cum_table(counts)
    si = np.full(V, 2**32 - 1, np.uint32)
    words = np.array([0, 1], np.int32)
    offsets = np.array([0, 2], np.int64)
    a0 = a1 = 0.1
    state = 777
    got0, got1 = syn0.copy(), syn1.copy()
    r, eff, loss = R.w2v_sg_batch(got0, got1, words, offsets, 0, 1, si, cum, R.make_guide(cum),
                                  1, 1, False, a0, a1, state, True, True)
    # by hand: 2 subsampling draws, then per centre one noise draw (no window draw)
    exp0 = syn0.astype(np.float64)
    exp1 = syn1.astype(np.float64)
    (_, _), state = _manual_draws(state, 2)
    total_loss = 0.0
    for centre, context in ((0, 1), (1, 0)):
        (rr,), state = _manual_draws(state, 1)
        noise = int(np.searchsorted(cum, rr >> 1, side="right"))
        outs = [centre] + ([noise] if noise != centre else [])
        labels = [1.0, 0.0][:len(outs)]
        m = exp0[context].copy()
        O = exp1[outs].copy()
        dm = np.zeros(d)
        for j, o in enumerate(outs):
            f = m @ O[j]
            s = 1 / (1 + math.exp(-f))
            g = a0 * (labels[j] - s)
            total_loss += -math.log(s if labels[j] else 1 - s)
            dm += g * O[j]
            exp1[o] += g * m
        exp0[context] += dm
    assert r == state and eff == 2
    np.testing.assert_allclose(got0, exp0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got1, exp1, rtol=1e-5, atol=1e-6)
    assert math.isclose(loss, total_loss, rel_tol=1e-5)


@pytest.mark.parametrize("kind", ["sg", "cbow"])
def test_update_is_minus_alpha_times_the_gradient(kind):
    """Finite differences of the loss: one centre word's update is -alpha * dloss/dparams."""
    V, d = 5, 4
    rng = np.random.default_rng(11)
    syn0 = rng.normal(0, 0.4, (V, d)).astype(np.float32)
    syn1 = rng.normal(0, 0.4, (V, d)).astype(np.float32)
    counts = np.array([10, 8, 6, 4, 2])
    cum = R.make_cum_table(counts)
    si = np.full(V, 2**32 - 1, np.uint32)
    # one centre (position 1) with two context words; centre 0 and 2 also train, so isolate
    # centre 1 by a 3-word sentence and window 1 with the first/last centres' effects removed:
    words = np.array([2, 0, 3], np.int32)
    offsets = np.array([0, 3], np.int64)
    alpha = 1e-3
    state = 4242

    def loss_of(p0, p1):
        a, b = p0.astype(np.float32), p1.astype(np.float32)
        fn = R.w2v_sg_batch if kind == "sg" else R.w2v_cbow_batch
        args = (a, b, words, offsets, 0, 1, si, cum, R.make_guide(cum), 3, 1, False)
        if kind == "cbow":
            args = args + (1,)
        return fn(*args, 0.0, 0.0, state, True, True)[2]   # alpha 0: loss only

    P0, P1 = syn0.astype(np.float64), syn1.astype(np.float64)
    eps = 1e-3
    grad0 = np.zeros_like(P0)
    grad1 = np.zeros_like(P1)
    for G, P in ((grad0, P0), (grad1, P1)):
        for idx in np.ndindex(P.shape):
            old = P[idx]
            P[idx] = old + eps
            lp = loss_of(P0, P1)
            P[idx] = old - eps
            lm = loss_of(P0, P1)
            P[idx] = old
            G[idx] = (lp - lm) / (2 * eps)
    a, b = syn0.copy(), syn1.copy()
    fn = R.w2v_sg_batch if kind == "sg" else R.w2v_cbow_batch
    args = (a, b, words, offsets, 0, 1, si, cum, R.make_guide(cum), 3, 1, False)
    if kind == "cbow":
        args = args + (1,)
    fn(*args, alpha, alpha, state, True, False)
    # the loss sums over centre words, each updated from its own snapshot: to first order in
    # alpha the whole pass is -alpha * the summed gradient (CBOW's mean scales the inputs' part)
    d0 = (a.astype(np.float64) - syn0) / alpha
    d1 = (b.astype(np.float64) - syn1) / alpha
    np.testing.assert_allclose(d1, -grad1, rtol=0.05, atol=2e-3)
    if kind == "sg":
        np.testing.assert_allclose(d0, -grad0, rtol=0.05, atol=2e-3)
    else:
        # CBOW with the mean: each context row gets the full error (word2vec.c), which is
        # (number of context words) x its gradient
        assert np.all(np.sign(d0[np.abs(grad0) > 1e-3]) == -np.sign(grad0[np.abs(grad0) > 1e-3]))


def test_tables():
    counts = np.array([1000, 100, 10, 1])
    cum = R.make_cum_table(counts, 0.75)
    assert cum[-1] == 2**31 and np.all(np.diff(cum) > 0)
    p = np.diff(np.concatenate([[0], cum])) / 2**31
    np.testing.assert_allclose(p, counts**0.75 / (counts**0.75).sum(), atol=1e-8)
    guide = R.make_guide(cum)
    assert guide.shape[0] & (guide.shape[0] - 1) == 0 and guide.shape[0] >= 2 * len(counts)
    gshift = 31 - int(np.log2(guide.shape[0]))
    targets = np.random.default_rng(0).integers(0, 2**31, 2000)
    for t in targets:
        i = guide[t >> gshift]
        while cum[i] <= t:
            i += 1
        assert i == np.searchsorted(cum, t, side="right")
    # uniform and negative exponents
    assert np.all(np.diff(R.make_cum_table(counts, 0.0)) == 2**29)
    assert R.make_cum_table(counts, -1.0)[0] < 2**31 // 1000
    # subsampling thresholds: frequent words kept with probability < 1, rare ones always
    si = R.sample_ints(counts, 1e-2)
    assert si[0] < 2**32 - 1 and si[-1] == 2**32 - 1
    assert np.all(R.sample_ints(counts, 0) == 2**32 - 1)


def test_sigmoid_table_matches_word2vec_c():
    t = R.SIGMOID_TABLE
    assert t.dtype == np.float32 and t.shape == (R.EXP_TABLE_SIZE + 1,)
    x = (np.arange(R.EXP_TABLE_SIZE + 1) / R.EXP_TABLE_SIZE * 2 - 1) * R.MAX_EXP
    np.testing.assert_allclose(t, 1 / (1 + np.exp(-x)), rtol=1e-6)
    assert R._sigmoid(np.float32(5.9999995), False) <= 1
    assert R._sigmoid(np.float32(7), False) == 1 and R._sigmoid(np.float32(-7), False) == 0
    assert abs(R._sigmoid(np.float32(0.3), False) - 1 / (1 + math.exp(-0.3))) < 0.01


def test_job_seed_streams_differ():
    seeds = {R.job_seed(1, e, j) for e in range(3) for j in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**64 for s in seeds)
    assert R.job_seed(1, 0, 0) == R.job_seed(1, 0, 0) != R.job_seed(2, 0, 0)


def _bad_arguments():
    """(description, changes to the kernel's arguments, exception, message) of bad calls."""
    p = _problem(4)
    V = p["syn0"].shape[0]
    ro = p["syn0"].copy()
    ro.setflags(write=False)
    words_oob = p["words"].copy()
    words_oob[3] = V
    words_neg = p["words"].copy()
    words_neg[0] = -1
    offs_dec = p["offsets"].copy()
    offs_dec[2], offs_dec[3] = offs_dec[3] + 1, offs_dec[2]
    offs_neg = p["offsets"].copy()
    offs_neg[0] = -5
    offs_long = p["offsets"].copy()
    offs_long[-1] += 10
    cum_bad = p["cum"].copy()
    cum_bad[-1] -= 1
    return [
        ("float64 syn0", dict(syn0=p["syn0"].astype(np.float64)), TypeError,
         "syn0 must be a 2-D float32"),
        ("Fortran syn0", dict(syn0=np.asfortranarray(p["syn0"])), ValueError, "C-contiguous"),
        ("read-only syn0", dict(syn0=ro), ValueError, "read-only"),
        ("list words", dict(words=p["words"].tolist()), TypeError, "words must be a numpy"),
        ("int64 words", dict(words=p["words"].astype(np.int64)), TypeError, "words must be"),
        ("short syn1neg", dict(syn1=p["syn1"][:-1].copy()), ValueError, "syn1neg has shape"),
        ("short sample_int", dict(si=p["si"][:-1].copy()), ValueError, "sample_int has shape"),
        ("short cum_table", dict(cum=p["cum"][:-1].copy()), ValueError, "cum_table has shape"),
        ("cum_table not ending at 2**31", dict(cum=cum_bad), ValueError, "cum_table\\[-1\\]"),
        ("guide of length 3", dict(guide=p["guide"][:3].copy()), ValueError, "power-of-two"),
        ("word index V", dict(words=words_oob), ValueError, f"index {V}, outside"),
        ("word index -1", dict(words=words_neg), ValueError, "index -1, outside"),
        ("decreasing offsets", dict(offsets=offs_dec), ValueError, "non-decreasing"),
        ("negative offset", dict(offsets=offs_neg), ValueError, "non-decreasing"),
        ("offsets past words", dict(offsets=offs_long), ValueError, "non-decreasing"),
        ("sentence range", dict(end=99), ValueError, "out of range"),
        ("sent_begin > sent_end", dict(begin=3, end=2), ValueError, "out of range"),
        ("negative=0", dict(negative=0), ValueError, "negative must be >= 1"),
        ("window=2**40", dict(window=2 ** 40), ValueError, "window must be at most"),
        ("window=1.5", dict(window=1.5), TypeError, "window must be an integer"),
        ("NaN alpha", dict(a0=float("nan")), ValueError, "alpha_begin must be finite"),
        ("empty vocabulary", dict(syn0=np.zeros((0, 3), np.float32),
                                  syn1=np.zeros((0, 3), np.float32)), ValueError,
         "at least one word"),
    ]


@pytest.mark.parametrize("kind", ["sg", "cbow"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_checks_its_arguments(backend, kind):
    """The same check (fastnet._kernel_checks.word2vec_job) on every backend, once per call:
    no argument reaches a compiled loop that would index out of bounds."""
    k = kernels_of(backend)
    name = "w2v_sg_batch" if kind == "sg" else "w2v_cbow_batch"
    for what, change, exc, match in _bad_arguments():
        a = dict(_problem(4), negative=5, window=3, a0=0.1, a1=0.1, begin=0, end=None)
        a.update(change)
        end = a["offsets"].shape[0] - 1 if a["end"] is None else a["end"]
        syn0 = a["syn0"] if what == "read-only syn0" else np.array(a["syn0"], copy=True,
                                                                     order="K")
        head = (syn0, a["syn1"], a["words"], a["offsets"], a["begin"], end, a["si"], a["cum"],
                a["guide"], a["negative"], a["window"], True)
        tail = (a["a0"], a["a1"], 1, False, False)
        with pytest.raises(exc, match=match) as info:
            getattr(k, name)(*head, *tail) if kind == "sg" else \
                getattr(k, name)(*head, 1, *tail)
        assert name in str(info.value), f"{backend} {what}: the message names the kernel"


_NAN_JOB = """
import sys, numpy as np, fastnet
from fastnet._backend import backend_kernels
from fastnet.reference import word2vec_kernels as R
k = backend_kernels(sys.argv[1])
V, d = 20, 8
rng = np.random.default_rng(0)
counts = np.arange(V, 0, -1)
cum = R.make_cum_table(counts)
words = rng.integers(0, V, 300).astype(np.int32)
offs = np.array([0, 100, 200, 300], dtype=np.int64)
for bad in (np.nan, np.inf, -np.inf, 1e30):
    syn0 = rng.random((V, d)).astype(np.float32)
    syn1 = rng.random((V, d)).astype(np.float32)
    syn0[::3] = bad
    syn1[1::4] = -bad
    for exact in (False, True):
        k.w2v_sg_batch(syn0, syn1, words, offs, 0, 3, R.sample_ints(counts, 0), cum,
                       R.make_guide(cum), 5, 3, True, 0.1, 0.1, 7, exact, True)
        k.w2v_cbow_batch(syn0, syn1, words, offs, 0, 3, R.sample_ints(counts, 0), cum,
                         R.make_guide(cum), 5, 3, True, 1, 0.1, 0.1, 7, exact, True)
    assert bad == 1e30 or not np.isfinite(syn0).all()
# a guide whose entries are outside 0..V-1 (not made by make_guide): the same draws as the
# reference (the compiled kernels scan from 0), never a read out of bounds
syn0 = rng.random((V, d)).astype(np.float32)
syn1 = rng.random((V, d)).astype(np.float32)
guide = R.make_guide(cum)
for bad_guide in (np.full_like(guide, 2**31 - 1), np.full_like(guide, -5), guide + V):
    a0, a1 = syn0.copy(), syn1.copy()
    out = k.w2v_sg_batch(a0, a1, words, offs, 0, 3, R.sample_ints(counts, 0), cum, bad_guide,
                         5, 3, True, 0.1, 0.1, 7, True, True)
    e0, e1 = syn0.copy(), syn1.copy()
    ref = R.w2v_sg_batch(e0, e1, words, offs, 0, 3, R.sample_ints(counts, 0), cum, guide,
                         5, 3, True, 0.1, 0.1, 7, True, True)
    assert out[:2] == ref[:2]
    np.testing.assert_allclose(a0, e0, rtol=1e-5, atol=1e-6)
print("ok")
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_and_inf_vectors_never_index_the_sigmoid_table(backend):
    """Vectors holding NaN/inf (training that diverged) give NaN updates, never a table index
    out of bounds (a NaN cast to int was one: SIGSEGV on cython); a guide with entries outside
    the vocabulary draws the right words (it was a read out of bounds).  In a subprocess."""
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", _NAN_JOB, backend], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", \
        f"{backend}: exit {out.returncode}\n{out.stderr[-2000:]}"
    for bad in (np.float32("nan"),):
        assert np.isnan(R._sigmoid(bad, False)) and np.isnan(R._sigmoid(bad, True))


@pytest.mark.skipif("cython" not in BACKENDS, reason="cython backend not built")
@pytest.mark.parametrize("kind,cbow_mean", KINDS)
def test_both_cython_builds_match_the_reference(kind, cbow_mean):
    """The baseline build and the AVX2 build (when the CPU and the build have it) agree."""
    import importlib
    from fastnet._cython import backend
    builds = ["word2vec"]
    if backend._cpu_has_avx2_fma() and importlib.util.find_spec(
            "fastnet._cython.word2vec_avx2") is not None:
        builds.append("word2vec_avx2")
    p = _problem(7)
    e0, e1, eres = _run("reference", kind, p, cbow_mean=cbow_mean)
    for name in builds:
        mod = importlib.import_module("fastnet._cython." + name)
        s0, s1 = p["syn0"].copy(), p["syn1"].copy()
        end = p["offsets"].shape[0] - 1
        if kind == "sg":
            res = mod.w2v_sg_batch(s0, s1, p["words"], p["offsets"], 0, end, p["si"], p["cum"],
                                   p["guide"], 5, 3, True, 0.05, 0.01, 12345, True, True)
        else:
            res = mod.w2v_cbow_batch(s0, s1, p["words"], p["offsets"], 0, end, p["si"],
                                     p["cum"], p["guide"], 5, 3, True, cbow_mean, 0.05, 0.01,
                                     12345, True, True)
        assert res[:2] == eres[:2], name
        assert_close(s0, e0, err_msg=f"{name} {kind}: syn0")
        assert_close(s1, e1, err_msg=f"{name} {kind}: syn1neg")
