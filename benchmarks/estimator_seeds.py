"""MLPClassifier() against scikit-learn's, defaults against defaults, over five seeds: the mean test
accuracy and the median fit time, on MNIST (8,000/2,000; needs FASTNET_DATA) and digits.

Usage: ``python benchmarks/estimator_seeds.py [digits] [mnist] [--seeds=5]`` (run it alone on the machine).
"""
import sys, time, numpy as np, warnings
import fastnet
from sklearn.neural_network import MLPClassifier as SK
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
warnings.simplefilter("ignore")
import os
root = os.path.join(os.environ.get("FASTNET_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")), "mnist", "")
X, y = fastnet.load_mnist(root + "t10k-images-idx3-ubyte.gz", root + "t10k-labels-idx1-ubyte.gz")
X = X.astype(np.float64) / 255.0; y = np.asarray(y, np.int64)
Xd, yd = load_digits(return_X_y=True); Xd = Xd / 16.0
sets = {"mnist": (X[:8000], y[:8000], X[8000:], y[8000:]),
        "digits": tuple(train_test_split(Xd, yd, test_size=0.25, random_state=0, stratify=yd)[i] for i in (0, 2, 1, 3))}
args = [a for a in sys.argv[1:] if not a.startswith("--seeds=")]
SEEDS = range(int(next((a.split("=")[1] for a in sys.argv[1:] if a.startswith("--seeds=")), 5)))
which = args or ["digits", "mnist"]
for name in which:
    Xtr, ytr, Xte, yte = sets[name]
    for lib, cls in (("fastnet", fastnet.MLPClassifier), ("sklearn", SK)):
        accs, ts, eps = [], [], []
        for seed in SEEDS:
            t = time.perf_counter(); m = cls(random_state=seed).fit(Xtr, ytr); ts.append(time.perf_counter() - t)
            accs.append(m.score(Xte, yte)); eps.append(m.n_iter_)
        print(f"{name} {lib}: acc mean {np.mean(accs)*100:.2f} % {[round(a*100,2) for a in accs]} time {np.median(ts):.2f}s epochs {eps}", flush=True)
