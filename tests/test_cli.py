"""The command line: every command's --help, the jobs, and exit codes 0 / 1 / 2."""
import gzip
import importlib.util
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import fastnet
from fastnet.__main__ import build_parser, load_data, main

from conftest import REPO

COMMANDS = ["demo", "train", "evaluate", "word2vec", "similar", "analogy", "bench"]
HAS_W2V = importlib.util.find_spec("fastnet.word2vec") is not None


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, n=90, header=True, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 3], [3, 0], [-3, -3]])
    X = centers[y] + rng.normal(0, 0.5, (n, 2))
    names = np.array(["red", "green", "blue"])[y]
    with open(path, "w") as fh:
        if header:
            fh.write("x1,x2,colour\n")
        for row, lab in zip(X, names):
            fh.write(f"{row[0]:.4f},{row[1]:.4f},{lab}\n")
    return X, names


def write_idx(folder, n=60, side=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.uint8)
    X = (rng.random((n, side * side)) * 80).astype(np.uint8)
    X[y == 1, : side * side // 2] += 150
    img = folder / "toy-images-idx3-ubyte.gz"
    lab = folder / "toy-labels-idx1-ubyte.gz"
    with gzip.open(img, "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, n, side, side) + X.tobytes())
    with gzip.open(lab, "wb") as fh:
        fh.write(struct.pack(">II", 2049, n) + y.tobytes())
    return img, lab


# ----------------------------------------------------------------------------------- help
def test_help_everywhere(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in COMMANDS:
        assert name in out
    for name in COMMANDS:
        code, out, _ = run([name, "--help"], capsys)
        assert code == 0, name
        assert out.startswith(f"usage: fastnet {name}"), name


def test_version_and_no_command(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and fastnet.__version__ in out
    code, _, err = run([], capsys)
    assert code == 2 and "usage" in err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fastnet", "train", "--lr", "-1", "x.csv"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "argument --lr: expected a positive number" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "fastnet", "--help"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: fastnet" in proc.stdout


# ------------------------------------------------------------------------ train / evaluate
def test_train_and_evaluate_csv(tmp_path, capsys):
    write_csv(tmp_path / "data.csv")
    model = tmp_path / "model.npz"
    code, out, err = run(["train", str(tmp_path / "data.csv"), "--hidden", "6", "--epochs",
                          "60", "--optimizer", "sgd", "--lr", "0.5", "--out", str(model),
                          "--quiet"], capsys)
    assert code == 0, err
    assert "labels in 'colour'" in out and "test accuracy" in out and "s/epoch" in out
    assert model.exists()
    est = fastnet.load(model)
    assert list(est.classes_) == ["blue", "green", "red"] and est.layer_sizes_ == [2, 6, 3]
    code, out, err = run(["evaluate", str(model), str(tmp_path / "data.csv")], capsys)
    assert code == 0, err
    assert "accuracy" in out and "confusion matrix" in out
    acc = float(out.split("accuracy ")[1].split(" %")[0])
    assert acc > 80
    rows = out.split("confusion matrix")[1].strip().splitlines()[2:]
    assert [r.split()[0] for r in rows] == ["blue", "green", "red"]
    assert sum(int(v) for r in rows for v in r.split()[1:]) == 90


def _adam_backend():
    """The default backend when it has Adam (the defaults' optimiser), else the reference."""
    from _api_helpers import optimizer_missing
    return fastnet.get_backend() if optimizer_missing("adam") is None else "reference"


def test_readme_iris_command_gives_a_good_model(data_dir, capsys):
    """The README's `fastnet train iris.csv --label-column species --scale standardize
    --epochs 1000` (full batches of 120: the default 200 epochs are 200 steps, too few)."""
    from conftest import need
    iris = need(data_dir, "seed", "iris.csv")
    code, out, err = run(["train", str(iris), "--label-column", "species", "--scale",
                          "standardize", "--epochs", "1000", "--quiet", "--backend",
                          _adam_backend()], capsys)
    assert code == 0, err
    test_acc = float(out.split("test accuracy ")[1].split(" %")[0])
    assert test_acc >= 90.0, out


def test_train_defaults_on_csv(tmp_path, capsys):
    write_csv(tmp_path / "data.csv")
    code, out, err = run(["train", str(tmp_path / "data.csv"), "--quiet", "--backend",
                          _adam_backend()], capsys)
    assert code == 0, err
    assert "adam lr=0.001" in out and "relu/softmax" in out
    assert float(out.split("test accuracy ")[1].split(" %")[0]) > 80


def test_train_options(tmp_path, capsys):
    write_csv(tmp_path / "d.csv", header=False)
    code, out, err = run(["train", str(tmp_path / "d.csv"), "--hidden", "5,4", "--activation",
                          "relu,tanh", "--output", "softmax", "--optimizer", "momentum",
                          "--lr", "0.05", "--l2", "0.001", "--epochs", "5", "--dtype",
                          "float64", "--scale", "standardize", "--batch-size", "8",
                          "--test-fraction", "0", "--seed", "3", "--backend", "reference",
                          "--out", str(tmp_path / "m.npz"), "--quiet"], capsys)
    assert code == 0, err
    assert "column 2" in out and "test accuracy" not in out
    est = fastnet.load(tmp_path / "m.npz")
    assert est.activations_ == ["relu", "tanh", "softmax"] and est.penalty == "l2"
    assert est.params_.dtype == np.float64
    meta = fastnet.io.read_metadata(tmp_path / "m.npz")
    assert meta["metadata"]["cli"]["scaling"]["kind"] == "standardize"
    code, out, err = run(["evaluate", str(tmp_path / "m.npz"), str(tmp_path / "d.csv"),
                          "--label-column", "2"], capsys)
    assert code == 0, err


def test_train_idx_and_npz(tmp_path, capsys):
    img, lab = write_idx(tmp_path)
    code, out, err = run(["train", str(img), "--hidden", "4", "--epochs", "5", "--out",
                          str(tmp_path / "idx.npz"), "--quiet"], capsys)
    assert code == 0, err
    assert "IDX: 60 images of 16 pixels" in out
    code, out, err = run(["evaluate", str(tmp_path / "idx.npz"), str(img), str(lab)], capsys)
    assert code == 0, err and "accuracy" in out
    X, y, _, pixels = load_data(str(img))
    assert pixels and X.shape == (60, 16)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, out, err = run(["train", str(tmp_path / "d.npz"), "--hidden", "0", "--epochs", "3",
                          "--quiet"], capsys)
    assert code == 0, err
    assert ".npz: 60 samples" in out


def test_evaluate_course_model_list(tmp_path, capsys, seed_data):
    T1, T2, X, y = seed_data
    fastnet.save([T1, fastnet.Sigmoid, T2, fastnet.Sigmoid], tmp_path / "course.npz")
    np.savez(tmp_path / "test.npz", X=(X * 255).astype(np.uint8), y=y)
    code, out, err = run(["evaluate", str(tmp_path / "course.npz"), str(tmp_path / "test.npz")],
                         capsys)
    assert code == 0, err
    assert "accuracy 88.1" in out or "accuracy 88.0" in out or "accuracy 88.2" in out


# ------------------------------------------------------------------------------ exit codes
@pytest.mark.parametrize("argv,match", [
    (["train", "nosuch.csv"], "no such file"),
    (["train", "{csv}", "--activation", "swish"], "'activation' parameter"),
    (["train", "{csv}", "--label-column", "weight"], "not a column"),
    (["train", "{csv}", "--hidden", "a"], "--hidden takes layer sizes"),
    (["train", "{csv}", "--l1", "0.1", "--l2", "0.1"], "not both"),
    (["evaluate", "{csv}", "{csv}"], "not a fastnet model file"),
    (["train", "{txt}"], "unknown data format"),
])
def test_bad_usage_exits_2(tmp_path, capsys, argv, match):
    write_csv(tmp_path / "d.csv")
    (tmp_path / "d.bin").write_text("?")
    argv = [a.format(csv=tmp_path / "d.csv", txt=tmp_path / "d.bin") for a in argv]
    code, out, err = run(argv + ["--quiet"] if argv[0] == "train" else argv, capsys)
    assert code == 2
    assert match in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_argparse_errors_exit_2(capsys):
    for argv in (["train"], ["train", "x.csv", "--epochs", "0"], ["nosuchcommand"],
                 ["demo", "--backend", "gpu"]):
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert "error:" in err


def test_failure_exits_1_and_debug_shows_traceback(tmp_path, capsys):
    write_csv(tmp_path / "d.csv")
    argv = ["train", str(tmp_path / "d.csv"), "--lr", "1e9", "--activation", "linear",
            "--output", "softmax", "--scale", "none", "--quiet", "--epochs", "5"]
    with np.errstate(all="ignore"):
        code, _, err = run(argv, capsys)
        assert code == 1
        assert "diverged" in err and "Traceback" not in err
        code, _, err = run(argv + ["--debug"], capsys)
    assert code == 1 and "Traceback" in err and "DivergenceError" in err


# ------------------------------------------------------------------------------------ demo
def test_demo_with_plots(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="--plots needs matplotlib (pip install "
                        "'fastnet[plot]')")
    # without the shared corpus: no word-vector picture (that one trains word2vec, which in
    # this process, after the rest of the suite, took minutes; run alone it takes seconds)
    monkeypatch.setattr("fastnet.datasets.data_dir", lambda *a, **k: None)
    source = "sklearn" if importlib.util.find_spec("sklearn") else "generated"
    code, out, err = run(["demo", "--epochs", "2", "--reference-epochs", "1", "--source",
                          source, "--plots", str(tmp_path / "plots")], capsys)
    assert code == 0, err
    assert "data:" in out and "train accuracy" in out and "test accuracy" in out
    assert "seconds per epoch" in out
    for name in ("activations", "learning_curves", "digits", "decision_boundary"):
        path = tmp_path / "plots" / f"{name}.png"
        assert path.exists() and path.stat().st_size > 5000, name
        assert f"wrote {path}" in out


def test_demo_plots_without_matplotlib_fails_before_any_work(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from fastnet.__main__ import main\n"
            f"sys.exit(main(['demo', '--epochs', '1', '--source', 'generated', '--plots', "
            f"{str(tmp_path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert "needs matplotlib" in proc.stderr and "pip install" in proc.stderr
    assert "data:" not in proc.stdout and "epoch" not in proc.stdout  # nothing was trained


def test_demo_says_its_backend_before_it_works(capsys):
    code, out, err = run(["demo", "--epochs", "1", "--reference-epochs", "0", "--source",
                          "generated", "--backend", "reference"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("backend:"))
    assert first < next(i for i, l in enumerate(lines) if l.startswith("data:"))
    assert "nothing to compile" in lines[first]


def test_demo_backend_notes():
    from fastnet.demo import backend_note
    assert "compiled ahead of time" in backend_note("cython")
    assert "Numba" in backend_note("numba")  # compiling now, or from the disk cache


def test_demo_run_reports_speedup_on_compiled_backend(capsys):
    compiled = [b for b in fastnet.available_backends() if b != "reference"]
    if not compiled:
        pytest.skip("no compiled backend: the demo reports no speed-up")
    from fastnet.demo import run as demo_run
    with fastnet.use_backend(compiled[0]):
        res = demo_run(epochs=2, reference_epochs=1, source="generated")
    assert res["speedup"] > 0 and res["backend"] == compiled[0]
    assert "faster" in capsys.readouterr().out


# ------------------------------------------------------------------------------- word2vec
@pytest.mark.skipif(not HAS_W2V, reason="fastnet.word2vec is not available yet")
def test_word2vec_similar_analogy(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["king", "queen", "man", "woman", "prince", "princess", "boy", "girl"]
    with open(tmp_path / "corpus.txt", "w") as fh:
        for _ in range(400):
            fh.write(" ".join(rng.choice(words, 8)) + "\n")
    vectors = tmp_path / "v.bin"
    code, out, err = run(["word2vec", str(tmp_path / "corpus.txt"), "--out", str(vectors),
                          "--size", "10", "--min-count", "1", "--epochs", "1", "--sg"], capsys)
    assert code == 0, err and vectors.exists()
    code, out, err = run(["similar", "king", "--vectors", str(vectors), "--topn", "3"], capsys)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 3
    code, out, err = run(["analogy", "man", "king", "woman", "--vectors", str(vectors)], capsys)
    assert code == 0, err and "man : king :: woman : ?" in out
    code, out, err = run(["similar", "zebra", "--vectors", str(vectors)], capsys)
    assert code == 2 and "zebra" in err
    text = tmp_path / "v.txt"
    code, _, err = run(["word2vec", str(tmp_path / "corpus.txt"), "--out", str(text), "--size",
                        "10", "--min-count", "1", "--epochs", "1"], capsys)
    assert code == 0, err and text.read_text().split()[0] == "8"


def test_vectors_commands_without_vectors(tmp_path, capsys):
    code, _, err = run(["similar", "king", "--vectors", str(tmp_path / "none.bin")], capsys)
    if HAS_W2V:
        assert code == 2 and "no such file" in err
    else:
        assert code == 1 and "fastnet.word2vec is not available" in err


# ---------------------------------------------------------------------------------- bench
def test_bench_outside_a_checkout(tmp_path, capsys):
    from fastnet.__main__ import cmd_bench
    args = build_parser().parse_args(["bench"])
    with pytest.raises(Exception, match="source checkout"):
        cmd_bench(args, root=str(tmp_path))
    code, _, err = run(["bench"], capsys) if not (REPO / "benchmarks").is_dir() else (1, "", "")
    assert code == 1


def test_bench_runs_pytest_benchmark(tmp_path, capfd):
    pytest.importorskip("pytest_benchmark")
    from fastnet.__main__ import cmd_bench
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "benchmarks" / "bench_toy.py").write_text(
        "import pytest\n"
        "@pytest.mark.benchmark(group='toy')\n"
        "def test_sum(benchmark):\n"
        "    benchmark(sum, range(100))\n")
    args = build_parser().parse_args(["bench", "--", "--benchmark-min-rounds=2",
                                      "--benchmark-max-time=0.01"])
    assert cmd_bench(args, root=str(tmp_path)) == 0
    out = capfd.readouterr().out
    assert "test_sum" in out and "Median" in out and "toy" in out
