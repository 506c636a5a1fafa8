"""fastnet's command line: ``python -m fastnet COMMAND`` (or the ``fastnet`` script).

Commands
--------
demo       the course's network on real digits: accuracy, time per epoch, speed-up
train      train an MLP on MNIST IDX files, an .npz (X, y) or a CSV; save it
evaluate   accuracy and confusion matrix of a saved model on data
word2vec   train word vectors on a text corpus (one sentence per line)
similar    the nearest words of a word in saved vectors
analogy    a : b :: c : ? in saved vectors
bench      run the benchmark suite (source checkout) and print the table

Exit codes: 0 on success, 2 on bad usage (wrong options, bad input, unknown
words, missing files), 1 on a failure (for example training that diverges).
Errors are one line; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
import traceback

import numpy as np

__all__ = ["main", "build_parser", "load_data"]

PROG = "fastnet"


class UsageError(ValueError):
    """Bad command-line usage (exit code 2)."""


class CommandError(RuntimeError):
    """The command could not do its job (exit code 1)."""


# ---------------------------------------------------------------------------------- data
_IDX_IMAGES = ("images-idx3-ubyte", "images.idx3-ubyte")
_LABEL_NAMES = ("label", "labels", "class", "target", "y", "species", "digit")


def _is_idx(path):
    return any(tag in os.path.basename(path) for tag in _IDX_IMAGES + ("idx3",))


def _read_csv(path, label_column=None):
    with open(path, newline="", encoding="utf-8") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        delimiter = "\t" if path.endswith(".tsv") else ","
        if delimiter == "," and "," not in sample and ";" in sample:
            delimiter = ";"
        rows = [r for r in csv.reader(fh, delimiter=delimiter) if r and any(c.strip() for c in r)]
    if not rows:
        raise UsageError(f"{path}: the CSV file is empty")

    def numeric(cell):
        try:
            float(cell)
            return True
        except ValueError:
            return False

    def n_text(row):
        return sum(not numeric(c) for c in row)

    header = None
    if n_text(rows[0]) and (len(rows) == 1 or n_text(rows[0]) > n_text(rows[1])):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise UsageError(f"{path}: the CSV file has a header but no data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise UsageError(f"{path}: row {i + 1 + (header is not None)} has {len(r)} fields, "
                             f"expected {width}")
    if width < 2:
        raise UsageError(f"{path}: expected at least one feature column and a label column")
    if label_column is None:
        col = width - 1
        if header:
            for j, name in enumerate(header):
                if name.lower() in _LABEL_NAMES:
                    col = j
                    break
    else:
        if header and label_column in header:
            col = header.index(label_column)
        else:
            try:
                col = int(label_column)
            except ValueError:
                known = f"; its columns are {header}" if header else " (the file has no header)"
                raise UsageError(f"--label-column {label_column!r} is not a column of "
                                 f"{path}{known}") from None
            if not -width <= col < width:
                raise UsageError(f"--label-column {col} is out of range for {width} columns")
            col %= width
    labels = [r[col].strip() for r in rows]
    feats = [[c for j, c in enumerate(r) if j != col] for r in rows]
    try:
        X = np.array(feats, dtype=np.float64)
    except ValueError:
        for i, r in enumerate(feats):
            for j, c in enumerate(r):
                if not numeric(c):
                    name = [h for k, h in enumerate(header) if k != col][j] if header else j
                    raise UsageError(f"{path}: feature column {name!r} holds {c!r} (row "
                                     f"{i + 1}); features must be numbers (choose the label "
                                     f"column with --label-column)") from None
        raise
    if all(numeric(v) for v in labels):
        vals = np.array(labels, dtype=np.float64)
        y = vals.astype(np.int64) if np.all(vals == np.round(vals)) else vals
    else:
        y = np.array(labels)
    name = header[col] if header else f"column {col}"
    return X, y, f"{path} (CSV: {X.shape[0]} rows, {X.shape[1]} features, labels in {name!r})"


def load_data(path, labels=None, label_column=None):
    """Read a data set for ``train`` / ``evaluate``.

    Formats: an MNIST IDX pair (images and labels files, gzipped or not;
    the labels path is guessed from the images path when not given), an
    ``.npz`` with arrays ``X`` and ``y``, or a CSV (header optional) whose
    label column is ``label_column`` (a name or an index), else a column
    named label/class/target/y/species, else the last one.

    Returns
    -------
    X : ndarray (n, d)
    y : ndarray (n,)
    description : str
    pixels : bool
        True for IDX images (pixels 0-255).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if labels is not None or _is_idx(path):
        from fastnet.datasets import load_mnist
        if labels is None:
            guess = path.replace("images-idx3", "labels-idx1").replace("images.idx3",
                                                                         "labels.idx1")
            if guess == path or not os.path.exists(guess):
                raise UsageError(f"give the labels file of {path!r} as the second argument "
                                 f"(could not find {guess!r})")
            labels = guess
        X, y = load_mnist(path, labels)
        return X, y, f"{path} + {labels} (IDX: {X.shape[0]} images of {X.shape[1]} pixels)", True
    lower = path.lower()
    if lower.endswith(".npz"):
        from fastnet._files import read_npz
        z = read_npz(path, "data file (.npz with X and y)")   # a damaged file: ValueError
        keys = list(z)
        xk = next((k for k in ("X", "x", "data") if k in keys), None)
        yk = next((k for k in ("y", "Y", "labels", "target") if k in keys), None)
        if xk is None or yk is None:
            raise UsageError(f"{path}: expected arrays 'X' and 'y' in the .npz, found "
                             f"{keys}")
        X, y = z[xk], z[yk]
        if X.ndim == 3:
            X = X.reshape(X.shape[0], -1)
        pixels = X.dtype == np.uint8
        return X, y, f"{path} (.npz: {X.shape[0]} samples, {X.shape[1]} features)", pixels
    if lower.endswith((".csv", ".tsv", ".txt", ".data")):
        X, y, desc = _read_csv(path, label_column)
        return X, y, desc, False
    raise UsageError(f"{path}: unknown data format; expected MNIST IDX files, an .npz with X "
                     f"and y, or a .csv")


def _fit_scaling(mode, X, pixels):
    """The preprocessing chosen by --scale, as JSON-able metadata."""
    if mode == "auto":
        mode = "255" if pixels else "none"
    if mode == "none":
        return {"kind": "none"}
    if mode == "255":
        return {"kind": "divide", "value": 255.0}
    if mode == "standardize":
        Xd = np.asarray(X, dtype=np.float64)
        std = Xd.std(axis=0)
        return {"kind": "standardize", "mean": Xd.mean(axis=0).tolist(),
                "std": np.where(std == 0, 1.0, std).tolist()}
    raise UsageError(f"--scale must be auto, none, 255 or standardize, got {mode!r}")


def _apply_scaling(scaling, X, dtype):
    X = np.asarray(X, dtype=dtype)
    kind = (scaling or {}).get("kind", "none")
    if kind == "divide":
        return X / X.dtype.type(scaling["value"])
    if kind == "standardize":
        mean = np.asarray(scaling["mean"], dtype=dtype)
        std = np.asarray(scaling["std"], dtype=dtype)
        if mean.shape[0] != X.shape[1]:
            raise UsageError(f"the model was trained on {mean.shape[0]} features, the data has "
                             f"{X.shape[1]}")
        return (X - mean) / std
    return X


# ------------------------------------------------------------------------------- commands
def cmd_demo(args):
    from fastnet.demo import run
    run(plots=args.plots, epochs=args.epochs, hidden=args.hidden, lr=args.lr,
        batch_size=args.batch_size, source=args.source, seed=args.seed, dtype=args.dtype,
        reference_epochs=args.reference_epochs, backend=getattr(args, "backend", None))
    return 0


def _hidden_sizes(values):
    sizes = []
    for v in values:
        for part in str(v).replace(",", " ").split():
            try:
                n = int(part)
            except ValueError:
                raise UsageError(f"--hidden takes layer sizes such as 50 or 100,50, got "
                                 f"{v!r}") from None
            if n < 0:
                raise UsageError(f"--hidden sizes must be positive, got {n}")
            if n:
                sizes.append(n)
    return tuple(sizes)


#: The learning rate of each optimiser when --lr is not given.
_DEFAULT_LR = {"adam": 0.001, "rmsprop": 0.001, "sgd": 0.1, "momentum": 0.1, "nesterov": 0.1,
               "gd": 0.5}


def cmd_train(args):
    import fastnet
    from fastnet.estimators import MLPClassifier
    X, y, desc, pixels = load_data(args.data, args.labels, args.label_column)
    dtype = np.dtype(args.dtype)
    scaling = _fit_scaling(args.scale, X, pixels)
    X = _apply_scaling(scaling, X, dtype)
    if args.test_fraction:
        X, X_test, y, y_test = fastnet.train_test_split(X, y, test_size=args.test_fraction,
                                                        rng=args.seed, stratify=y)
    else:
        X_test = y_test = None
    if args.l1 is not None and args.l2 is not None:
        raise UsageError("give --l1 or --l2, not both")
    penalty = {"penalty": "l1", "lam": args.l1} if args.l1 is not None else \
        {"penalty": "l2", "lam": args.l2} if args.l2 is not None else {}
    acts = args.activation.split(",")
    hidden = _hidden_sizes(args.hidden)
    lr = args.lr if args.lr is not None else _DEFAULT_LR[args.optimizer]
    est = MLPClassifier(hidden, activation=acts[0] if len(acts) == 1 else acts,
                        output_activation=None if args.output == "auto" else args.output,
                        optimizer=args.optimizer, lr=lr,
                        batch_size="auto" if args.batch_size is None else args.batch_size,
                        momentum=args.momentum, max_epochs=args.epochs, tol=args.tol,
                        early_stopping=args.early_stopping, random_state=args.seed,
                        verbose=0 if args.quiet else 1, dtype=dtype.name, **penalty)
    print(f"data: {desc}")
    t0 = time.perf_counter()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the epoch budget is the user's choice here
        est.fit(X, y)
    wall = time.perf_counter() - t0
    print(f"model: layers {'-'.join(str(n) for n in est.layer_sizes_)}, "
          f"{'/'.join(est.activations_)}, {est.loss_function_}; {args.optimizer} lr={lr:g}, "
          f"{len(y)} training samples, backend {fastnet.get_backend()}, {dtype.name}")
    secs = est.history_["seconds"]
    per_epoch = float(np.median(secs[1:] if len(secs) > 1 else secs))
    line = (f"trained {est.n_iter_} epochs in {wall:.2f} s ({per_epoch:.4f} s/epoch): train "
            f"accuracy {100 * est.score(X, y):.2f} %")
    if X_test is not None:
        line += f", test accuracy {100 * est.score(X_test, y_test):.2f} % ({len(y_test)} held out)"
    print(line)
    if args.out:
        est.save(args.out, metadata={"cli": {"scaling": scaling, "data": desc,
                                             "label_column": args.label_column}})
        print(f"model saved to {args.out}")
    return 0


def _confusion(y_true, y_pred):
    labels = np.unique(np.concatenate((np.asarray(y_true).astype(str),
                                       np.asarray(y_pred).astype(str))))
    try:  # numeric labels in numeric order
        order = np.argsort(labels.astype(np.float64), kind="stable")
        labels = labels[order]
    except ValueError:
        pass
    index = {lab: i for i, lab in enumerate(labels)}
    M = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)):
        M[index[t], index[p]] += 1
    return labels, M


def _format_confusion(labels, M):
    width = max(5, max(len(str(l)) for l in labels), len(str(M.max())))
    head = "true \\ pred".ljust(max(11, width)) + " " + " ".join(str(l).rjust(width)
                                                                for l in labels)
    lines = [head]
    for lab, row in zip(labels, M):
        lines.append(str(lab).ljust(max(11, width)) + " " + " ".join(str(v).rjust(width)
                                                                     for v in row))
    return "\n".join(lines)


def cmd_evaluate(args):
    import fastnet
    from fastnet.io import load, read_metadata
    model = load(args.model)
    meta = read_metadata(args.model)
    cli = (meta.get("metadata") or {}).get("cli", {})
    label_column = args.label_column if args.label_column is not None else \
        cli.get("label_column")
    X, y, desc, pixels = load_data(args.data, args.labels, label_column)
    scaling = cli.get("scaling") or ({"kind": "divide", "value": 255.0} if pixels else None)
    dtype = np.dtype(meta.get("dtype", "float64"))
    X = _apply_scaling(scaling, X, dtype)
    print(f"model: {args.model} ({meta.get('class', 'model list')}, layers "
          f"{meta.get('layer_sizes', '?')}, {dtype.name})")
    print(f"data: {desc}")
    if isinstance(model, list):
        pred = fastnet.predict(model, X)
        regress = False
    else:
        pred = model.predict(X)
        regress = getattr(model, "_estimator_type", None) == "regressor"
    if regress:
        y = np.asarray(y, dtype=np.float64)
        mse = float(np.mean((np.asarray(pred, dtype=np.float64).reshape(y.shape) - y) ** 2))
        print(f"R^2 {model.score(X, y):.4f}, mean squared error {mse:.6g} on {len(y)} samples")
        return 0
    y = np.asarray(y)
    hits = np.asarray(pred).astype(str) == y.astype(str)
    print(f"accuracy {100 * hits.mean():.2f} % ({int(hits.sum())} of {len(y)})")
    labels, M = _confusion(y, pred)
    print("confusion matrix (rows: true label, columns: predicted):")
    print(_format_confusion(labels, M))
    return 0


def _word2vec_module():
    try:
        import fastnet.word2vec as w2v
    except ImportError as exc:
        raise CommandError(f"fastnet.word2vec is not available in this installation ({exc})") \
            from None
    return w2v


def _binary_flag(args, path):
    if args.binary is not None:
        return args.binary
    return not os.fspath(path).lower().endswith((".txt", ".vec", ".text"))


def cmd_word2vec(args):
    w2v = _word2vec_module()
    if not os.path.exists(args.corpus):
        raise FileNotFoundError(f"no such file: {args.corpus!r}")
    kwargs = dict(corpus_file=args.corpus, vector_size=args.size, window=args.window,
                  min_count=args.min_count, sg=1 if args.sg else 0, negative=args.negative,
                  epochs=args.epochs, sample=args.sample, alpha=args.alpha, seed=args.seed)
    if args.workers is not None:
        kwargs["workers"] = args.workers
    t0 = time.perf_counter()
    model = w2v.Word2Vec(**kwargs)
    wall = time.perf_counter() - t0
    binary = _binary_flag(args, args.out)
    model.wv.save_word2vec_format(args.out, binary=binary)
    print(f"{len(model.wv.index_to_key)} words x {args.size} dimensions trained in {wall:.1f} s "
          f"({'skip-gram' if args.sg else 'CBOW'}, {args.epochs} epochs); saved to {args.out} "
          f"({'binary' if binary else 'text'} word2vec format)")
    return 0


def _load_vectors(args):
    w2v = _word2vec_module()
    if not os.path.exists(args.vectors):
        raise FileNotFoundError(f"no such file: {args.vectors!r} (train vectors with "
                                f"`{PROG} word2vec CORPUS --out {args.vectors}`)")
    return w2v.KeyedVectors.load_word2vec_format(args.vectors,
                                                 binary=_binary_flag(args, args.vectors))


def _print_neighbours(pairs):
    width = max((len(w) for w, _ in pairs), default=4)
    for word, score in pairs:
        print(f"{word.ljust(width)}  {score:.4f}")


def cmd_similar(args):
    wv = _load_vectors(args)
    _print_neighbours(wv.most_similar(args.word, topn=args.topn))
    return 0


def cmd_analogy(args):
    wv = _load_vectors(args)
    print(f"{args.a} : {args.b} :: {args.c} : ?")
    _print_neighbours(wv.most_similar(positive=[args.b, args.c], negative=[args.a],
                                      topn=args.topn))
    return 0


def source_root():
    """The directory holding the imported fastnet package (a source checkout or site-packages)."""
    import fastnet
    return os.path.dirname(os.path.dirname(os.path.abspath(fastnet.__file__)))


def cmd_bench(args, root=None):
    import importlib.util
    root = root or source_root()
    if not (os.path.isdir(os.path.join(root, "benchmarks"))
            and os.path.exists(os.path.join(root, "pyproject.toml"))):
        raise CommandError(f"{PROG} bench runs the benchmark suite of a source checkout, but "
                           f"there is no benchmarks/ directory and pyproject.toml beside the "
                           f"fastnet package in {root}: clone the repository and run "
                           f"`python -m {PROG} bench` from its root")
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise CommandError("bench needs pytest and pytest-benchmark: "
                           "pip install 'fastnet[test]'")
    extra = list(args.pytest_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    cmd = [sys.executable, "-m", "pytest", os.path.join(root, "benchmarks"), "-q",
           "-p", "no:cacheprovider", "-o", "python_files=bench_*.py test_*.py",
           "--benchmark-only", "--benchmark-group-by=group",
           "--benchmark-columns=median,iqr,mean,rounds", "--benchmark-sort=name"]
    if args.k:
        cmd += ["-k", args.k]
    if args.json:
        cmd += [f"--benchmark-json={args.json}"]
    cmd += extra
    # (a run started from inside an xdist worker is not one: pytest-benchmark would disable itself)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print("running: " + " ".join(cmd), flush=True)
    code = subprocess.call(cmd, cwd=root, env=env)
    if code == 5:
        raise CommandError("no benchmark was collected (check -k)")
    if code != 0:
        raise CommandError(f"the benchmark run failed (pytest exit code {code})")
    return 0


# -------------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line + usage, exit code 2 (argparse's convention)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(convert, what, ok):
    """An argparse ``type``: ``convert(text)`` that must satisfy ``ok``, else a one-line error."""
    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v
    parse.__name__ = what.replace(" ", "_")
    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_nonneg_int = _number(int, "an integer >= 0", lambda v: v >= 0)
_positive_float = _number(float, "a positive number", lambda v: v > 0 and np.isfinite(v))


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return v


def build_parser():
    """The argument parser of ``python -m fastnet``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    common.add_argument("--backend", choices=("reference", "numba", "cython"),
                        default=argparse.SUPPRESS,
                        help="compute with this backend (default: the fastest available, or "
                             "FASTNET_BACKEND)")

    parser = _Parser(prog=PROG, description="fastnet: the deep-learning course's code, "
                     "compiled. Run `%(prog)s COMMAND --help` for a command's options.",
                     epilog="exit codes: 0 success, 1 failure, 2 bad usage")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the full traceback of an error")
    parser.add_argument("--backend", choices=("reference", "numba", "cython"), default=None,
                        help="compute with this backend")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", parents=[common], help="train the course's network on real "
                       "digits and print accuracy and speed",
                       description="Train the course's sigmoid network (one hidden layer of 50) "
                       "on digits that need no download, by online learning; print the data "
                       "source, train/test accuracy, seconds per epoch and the speed-up over "
                       "the numpy reference.")
    p.add_argument("--plots", metavar="DIR", help="also write the course's pictures (PNG) to DIR")
    p.add_argument("--epochs", type=_positive_int, default=30, help="epochs (default 30)")
    p.add_argument("--hidden", type=_positive_int, default=50, help="hidden units (default 50)")
    p.add_argument("--lr", type=_positive_float, default=0.5, help="learning rate (default 0.5)")
    p.add_argument("--batch-size", type=_positive_int, default=1,
                   help="samples per update (default 1: online learning)")
    p.add_argument("--source", choices=("auto", "sklearn", "mnist", "generated"),
                   default="auto", help="where the digits come from (default auto)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--reference-epochs", type=_nonneg_int, default=2,
                   help="epochs timed on the reference for the speed-up (0: skip)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", parents=[common], help="train an MLP classifier and save it",
                       description="Train an MLP classifier on MNIST IDX files (IMAGES "
                       "[LABELS]), an .npz with X and y, or a CSV with a label column; print "
                       "train/test accuracy and time per epoch; save the model with --out.")
    p.add_argument("data", help="IDX images file, .npz or .csv")
    p.add_argument("labels", nargs="?", help="IDX labels file (guessed from the images file "
                   "name when omitted)")
    p.add_argument("--label-column", help="CSV: the label column's name or index (default: a "
                   "column named label/class/target/species, else the last)")
    p.add_argument("--hidden", nargs="+", default=["100"], metavar="N",
                   help="hidden layer sizes, e.g. --hidden 50 or --hidden 100 50 (0: none; "
                        "default 100)")
    p.add_argument("--activation", default="relu",
                   help="hidden activation: relu (default), sigmoid, tanh, linear "
                        "(comma-separated: one per layer)")
    p.add_argument("--output", choices=("auto", "sigmoid", "softmax"), default="auto",
                   help="output units: auto (default: one sigmoid for two classes, else "
                        "softmax + log-loss), sigmoid (one per class + cross-entropy, the "
                        "course's) or softmax")
    p.add_argument("--epochs", type=_positive_int, default=200,
                   help="maximum epochs (default 200; training stops earlier once the cost "
                        "stops improving by --tol)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="samples per update (default min(200, samples); full batch for gd)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default 0.001 for adam and rmsprop, 0.1 for sgd, "
                        "momentum and nesterov, 0.5 for gd)")
    p.add_argument("--optimizer", choices=("adam", "sgd", "momentum", "nesterov", "rmsprop",
                                           "gd"), default="adam",
                   help="the update rule (default adam)")
    p.add_argument("--momentum", type=float, default=0.9, help="momentum coefficient (0.9)")
    p.add_argument("--l2", type=float, default=None, metavar="LAM",
                   help="L2 penalty strength, the course's lambda (default: scikit-learn's "
                        "alpha=1e-4 over the batch size)")
    p.add_argument("--l1", type=float, default=None, metavar="LAM", help="L1 penalty strength")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="stop once the cost has not improved by tol for 10 epochs (1e-4)")
    p.add_argument("--early-stopping", action="store_true",
                   help="hold out 10 %% of the training data and stop when its accuracy stalls")
    p.add_argument("--scale", choices=("auto", "none", "255", "standardize"), default="auto",
                   help="feature scaling (auto: divide pixels by 255, else none)")
    p.add_argument("--test-fraction", type=_fraction, default=0.2,
                   help="fraction held out for testing (default 0.2; 0: none)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--out", metavar="MODEL.npz", help="save the trained model there")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", parents=[common], help="accuracy and confusion matrix of a "
                       "saved model", description="Evaluate a model saved by `fastnet train` "
                       "or model.save / fastnet.save on data (same formats as train): accuracy "
                       "and confusion matrix (R^2 for regressors).")
    p.add_argument("model", help="a .npz written by fastnet")
    p.add_argument("data", help="IDX images file, .npz or .csv")
    p.add_argument("labels", nargs="?", help="IDX labels file")
    p.add_argument("--label-column", help="CSV: the label column's name or index")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("word2vec", parents=[common], help="train word vectors on a corpus",
                       description="Train word2vec (skip-gram or CBOW with negative "
                       "sampling) on a text file with one sentence per line; save the vectors "
                       "in word2vec format.")
    p.add_argument("corpus", help="text file, one sentence per line, tokens separated by spaces")
    p.add_argument("--out", default="vectors.bin", help="output file (default vectors.bin)")
    p.add_argument("--size", type=_positive_int, default=100, help="vector size (100)")
    p.add_argument("--window", type=_positive_int, default=5, help="context window (5)")
    p.add_argument("--min-count", type=_positive_int, default=5,
                   help="ignore rarer words (5)")
    arch = p.add_mutually_exclusive_group()
    arch.add_argument("--sg", action="store_true", help="skip-gram")
    arch.add_argument("--cbow", action="store_true", help="CBOW (the default)")
    p.add_argument("--negative", type=_positive_int, default=5, help="negative samples (5)")
    p.add_argument("--epochs", type=_positive_int, default=5, help="passes over the corpus (5)")
    p.add_argument("--sample", type=float, default=1e-3,
                   help="down-sampling of frequent words (1e-3)")
    p.add_argument("--alpha", type=_positive_float, default=0.025,
                   help="initial learning rate (0.025)")
    p.add_argument("--workers", type=_positive_int, default=None, help="threads")
    p.add_argument("--seed", type=_nonneg_int, default=1)
    _add_format_flags(p)
    p.set_defaults(func=cmd_word2vec)

    p = sub.add_parser("similar", parents=[common], help="nearest words in saved vectors",
                       description="Print the words whose vectors are most similar (cosine) to "
                       "WORD's.")
    p.add_argument("word")
    p.add_argument("--topn", type=_positive_int, default=10)
    _add_vectors_flags(p)
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("analogy", parents=[common], help="a : b :: c : ? in saved vectors",
                       description="Solve the analogy A is to B as C is to ? by "
                       "vector(B) - vector(A) + vector(C) (cosine, 3CosAdd).")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p.add_argument("--topn", type=_positive_int, default=5)
    _add_vectors_flags(p)
    p.set_defaults(func=cmd_analogy)

    p = sub.add_parser("bench", parents=[common], help="run the benchmark suite and print "
                       "the table", description="Run benchmarks/ of this source checkout "
                       "with pytest-benchmark and print the table. Extra arguments after -- go "
                       "to pytest.")
    p.add_argument("-k", metavar="EXPR", help="only benchmarks matching EXPR (pytest -k)")
    p.add_argument("--json", metavar="FILE", help="also save pytest-benchmark's JSON there")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)
    return parser


def _add_vectors_flags(p):
    """--vectors FILE and its format, for the commands that read saved vectors."""
    p.add_argument("--vectors", default="vectors.bin",
                   help="word2vec file (default vectors.bin)")
    _add_format_flags(p)


def _add_format_flags(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--binary", dest="binary", action="store_true", default=None,
                   help="binary word2vec format (default unless the name ends in .txt/.vec)")
    g.add_argument("--text", dest="binary", action="store_false",
                   help="text word2vec format")


def _version():
    from fastnet._version import __version__
    return __version__


# ----------------------------------------------------------------------------- main
def _exit_code(exc):
    from fastnet._backend import BackendUnavailableError
    from fastnet.training import DivergenceError
    if isinstance(exc, (CommandError, DivergenceError)):
        return 1
    if isinstance(exc, (UsageError, BackendUnavailableError, FileNotFoundError,
                        IsADirectoryError, NotADirectoryError, ValueError, TypeError,
                        KeyError)):
        return 2
    return 1


def _one_line(exc):
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    msg = " ".join(str(msg).split())
    return msg or type(exc).__name__


def main(argv=None):
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    try:
        if getattr(args, "backend", None):
            import fastnet
            fastnet.use_backend(args.backend)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return _exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
