"""Fuzz suite, the crash-prone half: damaged files, the command line, the kernels called directly.

Every case runs in a subprocess per backend (``tests/fuzz_worker.py``, restarted
after a crash): loading a damaged model / word2vec / vectors / C-format / IDX /
corpus file and using what was loaded (predict, partial_fit, train,
most_similar), the command line with random options and damaged inputs, and
the word2vec and network kernels with damaged arguments.  Each must end in the
same result on every backend or in a clean error of an allowed type, naming the
file when it is raised while reading it; never a signal or a hang.  See
``tests/test_fuzz.py`` for the rules and the counts, ``tests/fuzz_harness.py``
for the machinery.
"""
import gzip
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, note, strategies as st

import fastnet
from fuzz_harness import ORDER, Worker, _Quiet, _enc, fuzz, judge_sub, report

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    report(request)


@pytest.fixture(scope="module")
def workers():
    pool = {b: Worker(b) for b in ORDER}
    yield pool
    for w in pool.values():
        w.close()


# ---------------------------------------------------------------- the files to damage
@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Valid files of every kind fastnet reads (bytes), and what their use needs."""
    d = tmp_path_factory.mktemp("originals")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.array(["a", "b", "c"] * 4)
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fastnet.use_backend("reference"):
            for name, est, target in [
                    ("mlp", fastnet.MLPClassifier((4,), max_epochs=2, random_state=0), y),
                    ("logreg", fastnet.LogisticRegression(max_epochs=2, verbose=0), y),
                    ("logreg2", fastnet.LogisticRegression(max_epochs=2, verbose=0), y != "a"),
                    ("perceptron", fastnet.Perceptron(max_epochs=2), y),
                    ("mlpreg", fastnet.MLPRegressor((3,), max_epochs=2, random_state=0),
                     X[:, 0]),
                    ("linreg", fastnet.LinearRegression(max_epochs=2, verbose=0), X[:, 1])]:
                est.fit(X, target)
                est.save(d / name)
            model = [fastnet.init_weights(3, 4, rng=rng), fastnet.Sigmoid,
                     fastnet.init_weights(4, 2, rng=rng), fastnet.Softmax]
            fastnet.save(model, d / "list")
            sents = [[f"w{j}" for j in rng.integers(0, 8, 6)] for _ in range(30)]
            w2v = fastnet.Word2Vec(sents, vector_size=4, min_count=1, epochs=1, workers=1)
            w2v.save(str(d / "w2v"))
            w2v.wv.save(str(d / "kv"))
            w2v.wv.save_word2vec_format(str(d / "vec.txt"))
            w2v.wv.save_word2vec_format(str(d / "vec.bin"), binary=True)
    for name in ("mlp", "logreg", "logreg2", "perceptron", "mlpreg", "linreg", "list", "w2v",
                 "kv", "vec.txt", "vec.bin"):
        files[name] = (d / name).read_bytes()
    import struct
    imgs = rng.integers(0, 256, (20, 4, 4)).astype(np.uint8)
    files["idx-images"] = struct.pack(">IIII", 2051, 20, 4, 4) + imgs.tobytes()
    files["idx-labels"] = struct.pack(">II", 2049, 20) + bytes(range(10)) * 2
    files["corpus"] = "\n".join(" ".join(s) for s in sents).encode() + b"\n"
    return _Quiet({"files": files, "X": X, "y": y, "sents": sents})


NPZ_KINDS = ["mlp", "logreg", "logreg2", "perceptron", "mlpreg", "linreg", "list", "w2v", "kv"]
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                        st.sampled_from([10**12, -1, 2**31, 2**63 - 1, 1e308, -0.5, 99]),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
                        st.lists(st.integers(-2, 5), max_size=4))


def _paths(obj, prefix=()):
    """Every path (tuple of keys/indices) inside a JSON object."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    if path:
        if isinstance(obj, list) and value is _DROP:
            del obj[path[-1]]
        elif value is _DROP:
            obj.pop(path[-1], None)
        else:
            obj[path[-1]] = value


_DROP = object()


@st.composite
def damaged_npz(draw, data):
    """A damaged (or intact) fastnet npz file: truncated, bit-flipped, or re-saved with edited
    metadata or arrays (valid checksums: the damage reaches the loader's checks)."""
    import io
    how = draw(st.sampled_from(["none", "truncate", "flip", "meta", "meta", "meta", "array",
                                "array", "drop", "add"]))
    if how == "none":
        return data, how
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))], how
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out), how
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    meta_key = "__fastnet__" if "__fastnet__" in content else "__meta__"
    names = sorted(k for k in content if k != meta_key)
    if how == "meta":
        meta = json.loads(str(content[meta_key][()]))
        path = draw(st.sampled_from(list(_paths(meta))[1:]))
        value = draw(st.one_of(JSON_VALUES, st.just(_DROP)))
        _set(meta, path, value)
        content[meta_key] = np.array(json.dumps(meta))
        how = f"meta {path} = {value if value is not _DROP else 'dropped'!r}"
    elif how == "array":
        name = draw(st.sampled_from(names))
        a = content[name]
        op = draw(st.sampled_from(["short", "long", "nan", "huge", "int", "str", "2d", "empty",
                                   "complex", "f16"]))
        flat = a.reshape(-1)
        if a.dtype.kind not in "fiub" and op in ("nan", "huge", "int", "complex", "f16"):
            op = "short"
        content[name] = {"short": lambda: a[:-1] if a.ndim else a, "long": lambda: np.concatenate(
            [flat, flat[:1]]) if a.ndim else a, "nan": lambda: np.where(
            np.arange(flat.size) == 0, np.nan, flat.astype(float)).reshape(a.shape),
            "huge": lambda: (flat.astype(float) * 1e30).reshape(a.shape),
            "int": lambda: a.astype(np.int64) if a.dtype.kind in "fiub" else a,
            "str": lambda: a.astype(str), "2d": lambda: a.reshape(1, -1),
            "empty": lambda: a.reshape(-1)[:0], "complex": lambda: a.astype(complex)
            if a.dtype.kind in "fiu" else a,
            "f16": lambda: a.astype(np.float16) if a.dtype.kind == "f" else a}[op]()
        how = f"array {name} {op}"
    elif how == "drop":
        name = draw(st.sampled_from(names + [meta_key]))
        del content[name]
        how = f"drop {name}"
    else:
        content["extra"] = np.arange(3)
    buf = io.BytesIO()
    np.savez(buf, **content)
    return buf.getvalue(), how


@fuzz(80)
@given(data=st.data())
def test_damaged_model_and_vector_files(workers, originals, tmp_path_factory, data):
    """fastnet.load, Word2Vec.load, KeyedVectors.load on damaged files, then using what they
    return (predict, partial_fit, train, most_similar) in a subprocess per backend."""
    kind = data.draw(st.sampled_from(NPZ_KINDS))
    content, how = data.draw(damaged_npz(originals["files"][kind]))
    path = str(tmp_path_factory.mktemp("damaged") / f"{kind}.npz")
    with open(path, "wb") as fh:
        fh.write(content)
    X = originals["X"][:5]
    if kind == "w2v":
        job = {"action": "w2v_file", "path": path, "corpus": originals["sents"][:10]}
    elif kind == "kv":
        job = {"action": "kv_file", "path": path}
    else:
        job = {"action": "model_file", "path": path, "X": X.tolist(), "y": ["a"] * 5}
    judge_sub(workers, job, path=path, category="silent-nonfinite-output")


@st.composite
def damaged_text(draw, data, binary):
    how = draw(st.sampled_from(["none", "truncate", "flip", "header", "number", "line"]))
    out = bytearray(data)
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))], how
    if how == "flip":
        for _ in range(draw(st.integers(1, 3))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out), how
    nl = data.index(b"\n")
    if how == "header":
        n = draw(st.sampled_from([0, 1, 3, 7, 8, 9, -1, 10**11, 2**40, "x", "1e11"]))
        d = draw(st.sampled_from([0, 1, 4, 5, -4, 10**6, 10**12, "y"]))
        return f"{n} {d}".encode() + data[nl:], f"header {n} {d}"
    if how == "number" and not binary:
        lines = data.split(b"\n")
        i = draw(st.integers(1, len(lines) - 2))
        parts = lines[i].split(b" ")
        j = draw(st.integers(1, len(parts) - 1))
        parts[j] = draw(st.sampled_from([b"nan", b"inf", b"-inf", b"1e39", b"1e400", b"abc",
                                         b"", b"0x1p3"]))
        lines[i] = b" ".join(parts)
        return b"\n".join(lines), f"number line {i}: {parts[j]!r}"
    lines = data.split(b"\n")
    if binary:
        k = draw(st.integers(nl + 1, len(data) - 1))
        return data[:k] + draw(st.binary(min_size=1, max_size=8)) + data[k:], "insert"
    i = draw(st.integers(1, len(lines) - 2))
    return b"\n".join(lines[:i] + lines[i + 1:] if draw(st.booleans()) else
                      lines[:i] + [lines[i]] * 2 + lines[i + 1:]), f"line {i}"


@fuzz(50)
@given(data=st.data())
def test_damaged_word2vec_c_format_files(workers, originals, tmp_path_factory, data):
    """load_word2vec_format (text and binary, plain or gzip) on damaged files."""
    binary = data.draw(st.booleans())
    content, how = data.draw(damaged_text(originals["files"]["vec.bin" if binary else "vec.txt"],
                                          binary))
    if data.draw(st.booleans()):
        content = gzip.compress(content)
        if data.draw(st.booleans()):
            cut = bytearray(content)
            cut[data.draw(st.integers(10, len(cut) - 1))] ^= 0xFF
            content = bytes(cut)
            how += ", gzip flipped"
    path = str(tmp_path_factory.mktemp("vec") / ("vectors.bin" if binary else "vectors.txt"))
    with open(path, "wb") as fh:
        fh.write(content)
    judge_sub(workers, {"action": "c_format", "path": path, "binary": binary}, path=path)


@fuzz(40)
@given(data=st.data())
def test_damaged_idx_and_corpus_files(workers, originals, tmp_path_factory, data):
    """load_mnist on damaged IDX files (gzip or plain) and Word2Vec(corpus_file=) on damaged
    corpora (gzip, bzip2, invalid UTF-8)."""
    import bz2
    import struct
    d = tmp_path_factory.mktemp("idx")
    files = originals["files"]
    what = data.draw(st.sampled_from(["images", "labels", "corpus"]))
    raw = files["corpus" if what == "corpus" else f"idx-{what}"]
    how = data.draw(st.sampled_from(["none", "truncate", "flip", "header", "bytes"]))
    if how == "truncate":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        b = bytearray(raw)
        b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        raw = bytes(b)
    elif how == "header" and what != "corpus":
        fields = list(struct.unpack(">IIII" if what == "images" else ">II",
                                    raw[:16 if what == "images" else 8]))
        fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(st.sampled_from(
            [0, 1, 2049, 2051, 2**32 - 1, 2**31, 60000]))
        head = struct.pack(">" + "I" * len(fields), *fields)
        raw = head + raw[len(head):]
    elif how == "bytes":
        raw = raw + data.draw(st.binary(min_size=1, max_size=6))
    pack = data.draw(st.sampled_from(["plain", "gzip", "bz2"]))
    packed = {"plain": lambda r: r, "gzip": gzip.compress, "bz2": bz2.compress}[pack](raw)
    if pack != "plain" and data.draw(st.booleans()):
        b = bytearray(packed)
        b[data.draw(st.integers(0, len(b) - 1))] ^= 0x5A
        packed = bytes(b)
    path = str(d / f"{what}.{pack}")
    with open(path, "wb") as fh:
        fh.write(packed)
    if what == "corpus":
        job = {"action": "corpus_file", "path": path}
    else:
        other = str(d / "other")
        with open(other, "wb") as fh:
            fh.write(files["idx-labels" if what == "images" else "idx-images"])
        job = {"action": "mnist", "images": path if what == "images" else other,
               "labels": path if what == "labels" else other}
    replies = judge_sub(workers, job, path=path)
    r = replies["reference"]
    if r["status"] == "error" and r["stage"] == "load" and what != "corpus":
        assert path in r["message"] or other in r["message"]


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, originals):
    """Inputs of the command line: a CSV, an npz (X, y), IDX files, a corpus, a trained model
    and vectors, and a damaged copy of each."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    species = np.array(["setosa", "versicolor", "virginica"])[rng.integers(0, 3, 30)]
    rows = ["a,b,c,species"] + [f"{r[0]:.3f},{r[1]:.3f},{r[2]:.3f},{s}" for r, s in
                                zip(X, species)]
    (d / "data.csv").write_text("\n".join(rows) + "\n")
    np.savez(d / "data.npz", X=X, y=rng.integers(0, 2, 30))
    (d / "t-images-idx3-ubyte").write_bytes(originals["files"]["idx-images"])
    (d / "t-labels-idx1-ubyte").write_bytes(originals["files"]["idx-labels"])
    (d / "corpus.txt").write_bytes(originals["files"]["corpus"] * 3)
    (d / "vectors.txt").write_bytes(originals["files"]["vec.txt"])
    (d / "vectors.bin").write_bytes(originals["files"]["vec.bin"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fastnet.use_backend("reference"):
            fastnet.MLPClassifier((3,), max_epochs=2, random_state=0, verbose=0).fit(
                X, species).save(d / "model.npz")
    for name in ("data.csv", "data.npz", "t-images-idx3-ubyte", "corpus.txt", "vectors.txt",
                 "vectors.bin", "model.npz"):
        raw = bytearray((d / name).read_bytes())
        raw[len(raw) // 2] ^= 0x20
        (d / ("bad-" + name)).write_bytes(bytes(raw[: max(1, int(len(raw) * 0.9))]))
    (d / "empty.csv").write_text("")
    (d / "text.csv").write_text("a,b\nx,y\nz,w\n")
    return _Quiet({"dir": d, "out": tmp_path_factory.mktemp("cli-out")})


def _opt(draw, flag, good, bad=()):
    v = draw(st.sampled_from(list(good) * 2 + list(bad)))
    return [] if v is None else [flag] + ([str(v)] if v is not True else [])


@st.composite
def cli_argv(draw, files):
    d, out = files["dir"], files["out"]
    cmd = draw(st.sampled_from(["train", "train", "evaluate", "word2vec", "similar", "analogy"]))
    bad = draw(st.sampled_from(["", "", "bad-"]))
    f = lambda name: str(d / (bad + name))  # noqa: E731
    if cmd == "train":
        data = draw(st.sampled_from([[f("data.csv")], [f("data.npz")],
                                     [f("t-images-idx3-ubyte"), str(d / "t-labels-idx1-ubyte")],
                                     [str(d / "empty.csv")], [str(d / "text.csv")],
                                     [str(d / "missing.csv")]]))
        argv = ["train"] + data + ["--quiet", "--epochs",
                                   draw(st.sampled_from(["1", "2", "0", "-1", "x"]))]
        argv += _opt(draw, "--hidden", [None, 3, 0], ["-2", "a"])
        argv += _opt(draw, "--activation", [None, "relu", "tanh"], ["swish", "relu,relu,relu"])
        argv += _opt(draw, "--output", [None, "softmax"], ["linear"])
        argv += _opt(draw, "--lr", [None, 0.1, 1e6], [0, -1, "nan", "inf"])
        argv += _opt(draw, "--batch-size", [None, 4, 1000], [0, -3])
        argv += _opt(draw, "--optimizer", [None, "gd", "momentum", "rmsprop"], ["adamw"])
        argv += _opt(draw, "--l2", [None, 0.01], [-1, "nan"])
        argv += _opt(draw, "--tol", [None, 0.0], ["nan"])
        argv += _opt(draw, "--scale", [None, "standardize", "255"], ["log"])
        argv += _opt(draw, "--test-fraction", [None, 0.3, 0], [1, -0.5, 2])
        argv += _opt(draw, "--dtype", [None, "float64"], ["float16"])
        argv += _opt(draw, "--label-column", [None, "species", "0"], ["nope", "99"])
        argv += _opt(draw, "--out", [None, str(out / "m.npz")], [str(out / "no" / "m.npz")])
    elif cmd == "evaluate":
        argv = ["evaluate", draw(st.sampled_from([f("model.npz"), str(d / "data.npz"),
                                                  str(d / "corpus.txt")])),
                draw(st.sampled_from([f("data.csv"), str(d / "data.npz"), str(d / "text.csv")]))]
    elif cmd == "word2vec":
        argv = ["word2vec", draw(st.sampled_from([f("corpus.txt"), str(d / "empty.csv"),
                                                  str(d / "missing.txt")])),
                "--out", str(out / draw(st.sampled_from(["v.bin", "v.txt"]))), "--workers", "1"]
        argv += _opt(draw, "--size", [None, 4], [0, "x"])
        argv += _opt(draw, "--min-count", [None, 1, 100], [0])
        argv += _opt(draw, "--alpha", [None, 0.05, 1000.0], [0, "nan"])
        argv += _opt(draw, "--epochs", [None, 1], [0])
        argv += _opt(draw, "--sample", [None, 0.0], [-1, "nan"])
        argv += _opt(draw, "--window", [None, 2], [0])
        argv += ["--sg"] if draw(st.booleans()) else []
    else:
        vec = draw(st.sampled_from([f("vectors.txt"), f("vectors.bin"), str(d / "corpus.txt"),
                                    str(d / "missing.bin")]))
        words = draw(st.lists(st.sampled_from(["w0", "w1", "w2", "w3", "zzz", ""]),
                              min_size=3, max_size=3))
        argv = [cmd] + (words[:1] if cmd == "similar" else words) + ["--vectors", vec]
        argv += _opt(draw, "--topn", [None, 2], [0, -1, "x"])
        argv += _opt(draw, "--text", [None, True], [])
    return argv


@fuzz(40)
@given(data=st.data())
def test_command_line(workers, cli_files, data):
    """fastnet train / evaluate / word2vec / similar / analogy with random options and damaged
    files: exit code 0, 1 or 2, a one-line error of an allowed type, the same on every backend
    (``fastnet word2vec --alpha 1000 --backend cython`` segfaulted)."""
    argv = data.draw(cli_argv(cli_files))
    replies = judge_sub(workers, {"action": "cli", "argv": argv})
    for b, r in replies.items():
        res = r["result"]
        if res["code"] != 0:
            assert res["stderr"].strip() and "Traceback" not in res["stderr"], \
                f"{b}: {argv}: {res['stderr']}"


# ---------------------------------------------------------------- the kernels, called directly
@st.composite
def w2v_kernel_args(draw):
    from fastnet.reference import word2vec_kernels as R
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    V, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    counts = rng.integers(1, 20, V)
    words = rng.integers(0, V, 40).astype(np.int32)
    offsets = np.array([0, 10, 25, 40], dtype=np.int64)
    cum = R.make_cum_table(counts)
    args = {"syn0": rng.random((V, d), dtype=np.float32), "syn1neg": rng.random(
        (V, d), dtype=np.float32), "words": words, "sent_offsets": offsets, "sent_begin": 0,
        "sent_end": 3, "sample_int": R.sample_ints(counts, 0), "cum_table": cum,
        "guide": R.make_guide(cum), "negative": 2, "window": 2, "shrink_windows": True,
        "alpha_begin": 0.05, "alpha_end": 0.01, "rng_state": 7, "exact_sigmoid": True,
        "compute_loss": True}
    damage = "none"
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(args)))
        a = args[name]
        if isinstance(a, np.ndarray):
            op = draw(st.sampled_from(["short", "long", "dtype", "2d", "empty", "nan", "big"]))
            flat = a.reshape(-1)
            new = {"short": lambda: a[:-1], "long": lambda: np.concatenate([a, a[:1]]),
                   "dtype": lambda: a.astype(np.float64 if a.dtype.kind != "f" else np.int32),
                   "2d": lambda: flat.reshape(1, -1), "empty": lambda: a[:0],
                   "nan": lambda: np.full_like(a, np.nan) if a.dtype.kind == "f" else a,
                   "big": lambda: np.full_like(a, np.iinfo(a.dtype).max if a.dtype.kind in "iu"
                                               else 1e38)}[op]()
            args[name] = new
            damage = f"{name} {op}"
        else:
            args[name] = draw(st.sampled_from([-1, 0, 2**31, 2**40, 1.5, "1", None,
                                               float("nan"), 10**6]))
            damage = f"{name} = {args[name]!r}"
    kind = draw(st.sampled_from(["w2v_sg_batch", "w2v_cbow_batch"]))
    order = ["syn0", "syn1neg", "words", "sent_offsets", "sent_begin", "sent_end", "sample_int",
             "cum_table", "guide", "negative", "window", "shrink_windows"] + \
        (["cbow_mean"] if kind == "w2v_cbow_batch" else []) + \
        ["alpha_begin", "alpha_end", "rng_state", "exact_sigmoid", "compute_loss"]
    args["cbow_mean"] = 1
    return kind, [_enc(args[k]) for k in order], damage


@fuzz(60)
@given(data=st.data())
def test_word2vec_kernels_called_directly(workers, data):
    """w2v_sg_batch / w2v_cbow_batch with damaged arguments on every backend (in a subprocess):
    the same clean error everywhere (one check: fastnet._kernel_checks.word2vec_job) or the
    same training."""
    kind, args, damage = data.draw(w2v_kernel_args())
    note(damage)
    # a guide or cum_table of wrong values (not a distribution) is memory-safe, but its draws
    # are not the reference's (which binary-searches cum_table and has no guide)
    judge_sub(workers, {"action": "kernel", "kernel": kind, "args": args}, rtol=1e-4,
              compare=not damage.startswith(("guide", "cum_table")))


@st.composite
def network_kernel_args(draw):
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    sizes = np.array([3, 4, 2], dtype=np.int64)
    kinds = np.array([1, 1], dtype=np.int64)
    m = 5
    P = (3 + 1) * 4 + (4 + 1) * 2
    args = {"params": rng.normal(size=P).astype(dtype), "sizes": sizes, "kinds": kinds,
            "X": rng.normal(size=(m, 3)).astype(dtype), "out": np.zeros((m, 2), dtype),
            "Y": rng.random((m, 2)).astype(dtype), "grad": np.zeros(P, dtype)}
    name = draw(st.sampled_from(["sizes", "params", "kinds", "X", "out", "Y", "grad", "none"]))
    damage = {"sizes": [np.array([3, 3000000, 2]), np.array([3, 4]), np.array([3, 0, 2]),
                        np.array([3, -4, 2]), np.array([30, 4, 2])],
              "params": [args["params"][:-3], args["params"][:1], args["params"].astype(
                  np.float16)],
              "kinds": [np.array([9, 1]), np.array([1]), np.array([-1, 1])],
              "X": [args["X"][:, :2], args["X"][:0], args["X"].astype(np.int64)],
              "out": [args["out"][:-1], args["out"][:, :1]],
              "Y": [args["Y"][:-1], args["Y"][:, :1]],
              "grad": [args["grad"][:-1]], "none": [None]}[name]
    value = draw(st.sampled_from(damage))
    if name != "none":
        args[name] = value
    kernel = draw(st.sampled_from(["forward_network", "backprop_batch", "backprop_samples"]))
    order = ["params", "sizes", "kinds", "X", "out"] if kernel == "forward_network" else \
        ["params", "sizes", "kinds", 2, "X", "Y", "grad"]
    return kernel, [_enc(args[k]) if isinstance(k, str) else k for k in order], \
        name if name in order else "none"


COMPILED = [b for b in ORDER if b != "reference"]


@pytest.mark.skipif(not COMPILED, reason="no compiled backend")
@fuzz(40)
@given(data=st.data())
def test_network_kernels_called_directly(workers, data):
    """forward_network / backprop_* of the compiled backends with inconsistent sizes, short
    params, bad codes: a clean error, never a read out of bounds (issue 13 item 2: a
    layer_sizes of [4, 3000000, 3] segfaulted on numba)."""
    kernel, args, damaged = data.draw(network_kernel_args())
    note(f"{kernel}: {damaged}")
    job = {"action": "kernel", "kernel": kernel, "args": args}
    judge_sub(workers, job, backends=COMPILED, must_fail=damaged not in ("none",))

