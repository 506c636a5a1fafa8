"""The subprocess of ``tests/test_fuzz.py``: runs crash-prone cases on one backend.

``python tests/fuzz_worker.py BACKEND`` reads one JSON case per line on
standard input and answers one JSON line per case on standard output:
``{"status": "ok", "result": ...}``, ``{"status": "error", "type": ..., "mro": [...],
"message": ...}`` for an exception (any type: the parent judges), and nothing
at all if the process dies (a signal: the parent sees a crash).  Cases are the
ones whose input can reach a compiled kernel through a damaged file or a
direct kernel call: loading a damaged model / word2vec / vectors / IDX /
corpus file and using what was loaded, the command line, the kernels.
"""
import contextlib
import io
import json
import sys
import traceback
import warnings

import numpy as np

#: "load" while a file is read, "use" once it was loaded (the reply says where an error arose)
STAGE = ["load"]


def _used():
    STAGE[0] = "use"


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return {"__array__": x.tolist(), "dtype": x.dtype.str}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def _array(spec):
    """An array from its JSON form ``{"__array__": data, "dtype": str}`` (or a plain list)."""
    if isinstance(spec, dict) and "__array__" in spec:
        return np.asarray(spec["__array__"], dtype=np.dtype(spec["dtype"]))
    return spec


def model_file(case):
    import fastnet
    obj = fastnet.load(case["path"])
    _used()
    X = np.asarray(_array(case["X"]), dtype=np.float64)
    if isinstance(obj, list):
        return {"outputs": fastnet.feedforward(obj, X), "labels": fastnet.predict(obj, X)}
    out = {"predict": obj.predict(X)}
    if hasattr(obj, "predict_proba"):
        out["proba"] = obj.predict_proba(X)
    y = _array(case["y"])
    if getattr(obj, "_estimator_type", None) == "regressor":
        y = X[:, 0].copy()
    elif hasattr(obj, "classes_"):
        y = obj.classes_[np.arange(X.shape[0]) % obj.classes_.shape[0]]
    for _ in range(3):                      # the loaded state reaches the training kernels
        obj.partial_fit(X, y)
    out["after"] = obj.predict(X)
    return out


def w2v_file(case):
    from fastnet import Word2Vec
    m = Word2Vec.load(case["path"])
    _used()
    m.workers, m.exact_sigmoid, m.shuffle_jobs = 1, True, False
    m.train(case["corpus"], epochs=1)
    return {"vectors": m.wv.vectors, "similar": m.wv.most_similar(m.wv.index_to_key[0], topn=2)}


def kv_file(case):
    from fastnet import KeyedVectors
    kv = KeyedVectors.load(case["path"])
    _used()
    return {"similar": kv.most_similar(kv.index_to_key[0], topn=2) if len(kv) else [],
            "vectors": kv.vectors}


def c_format(case):
    from fastnet import KeyedVectors
    kv = KeyedVectors.load_word2vec_format(case["path"], binary=case["binary"])
    _used()
    return {"similar": kv.most_similar(kv.index_to_key[0], topn=2) if len(kv) > 1 else [],
            "vectors": kv.vectors}


def mnist(case):
    import fastnet
    X, y = fastnet.load_mnist(case["images"], case["labels"], scale=case.get("scale", False))
    _used()
    return {"shape": list(X.shape), "sum": float(X.astype(np.float64).sum()),
            "labels": int(y.sum())}


def corpus_file(case):
    from fastnet import Word2Vec
    m = Word2Vec(corpus_file=case["path"], min_count=1, vector_size=4, epochs=1, workers=1,
                 exact_sigmoid=True, shuffle_jobs=False, sample=0)
    return {"vectors": m.wv.vectors, "words": m.wv.index_to_key}


def cli(case):
    import fastnet.__main__ as main_module
    seen = []
    original = main_module._exit_code

    def spy(exc):
        seen.append(exc)
        return original(exc)

    main_module._exit_code = spy
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main_module.main(case["argv"])
    finally:
        main_module._exit_code = original
    exc = seen[0] if seen else None
    return {"code": code, "stderr": err.getvalue()[-2000:],
            "exc_type": type(exc).__name__ if exc else None,
            "exc_mro": [c.__name__ for c in type(exc).__mro__] if exc else []}


def kernel(case):
    from fastnet import _backend
    k = getattr(_backend.kernels(), case["kernel"])
    args = [_array(a) for a in case["args"]]
    res = k(*args)
    return {"result": res, "arrays": [a for a in args if isinstance(a, np.ndarray)]}


ACTIONS = {f.__name__: f for f in (model_file, w2v_file, kv_file, c_format, mnist, corpus_file,
                                   cli, kernel)}


def main():
    backend = sys.argv[1]
    import fastnet
    fastnet.use_backend(backend)
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    for line in sys.stdin:
        case = json.loads(line)
        STAGE[0] = "load"
        try:
            reply = {"status": "ok", "result": _jsonable(ACTIONS[case["action"]](case))}
        except BaseException as exc:  # noqa: BLE001 - the parent judges the type
            reply = {"status": "error", "type": type(exc).__name__, "stage": STAGE[0],
                     "mro": [c.__name__ for c in type(exc).__mro__],
                     "message": str(exc)[:2000],
                     "traceback": traceback.format_exc()[-3000:]}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
