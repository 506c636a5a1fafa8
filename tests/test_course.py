"""The course's worked examples, pinned to their known results."""
import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from conftest import need, need_kernels

X2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


# ------------------------------------------------------------------ the perceptron
def test_perceptron_gates_and_xor_composed_from_them(impl):
    mod = impl.perceptron
    need_kernels("perceptron_train")
    w_not = mod.train(np.zeros(2), np.array([[0.0], [1.0]]), [1, 0])
    w_and = mod.train(np.zeros(3), X2, [0, 0, 0, 1])
    w_or = mod.train(np.zeros(3), X2, [0, 1, 1, 1])
    np.testing.assert_array_equal(mod.predict(w_not, np.array([[0.0], [1.0]])), [1, 0])
    np.testing.assert_array_equal(mod.predict(w_and, X2), [0, 0, 0, 1])
    np.testing.assert_array_equal(mod.predict(w_or, X2), [0, 1, 1, 1])
    # XOR = AND(OR(a, b), NOT(AND(a, b))): no single perceptron, but three of them
    xor = []
    for x in X2:
        o = mod.predict(w_or, x)
        n = mod.predict(w_not, [mod.predict(w_and, x)])
        xor.append(mod.predict(w_and, [o, n]))
    assert xor == [0.0, 1.0, 1.0, 0.0]


# ------------------------------------------------------------------------- Anscombe
@pytest.fixture(scope="module")
def anscombe(data_dir):
    A = np.loadtxt(need(data_dir, "seed", "Anscombe1.dat"))
    assert A.shape == (11, 2)
    return A[:, 0], A[:, 1]


def test_anscombe_gradient_descent_reaches_least_squares(impl, anscombe):
    need_kernels("linear_gd")
    x, y = anscombe
    lstsq = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)[0]
    np.testing.assert_allclose(lstsq, [3.0001, 0.5001], atol=1e-4)  # the known line
    # raw x (mean 9): a small rate and many iterations, as in the course
    theta, hist = impl.linear_regression(x, y, lr=0.015, tol=0.0, max_iter=30000)
    np.testing.assert_allclose(theta, lstsq, rtol=1e-7)
    np.testing.assert_array_equal(np.round(theta, 4), [3.0001, 0.5001])
    assert hist["J"][-1] == pytest.approx(ref.linear_cost(lstsq, x, y), rel=1e-10)
    # standardised x converges in a few dozen iterations to the same line
    mu, sd = x.mean(), x.std()
    t, h = impl.linear_regression(fastnet.standardize(x[:, None]), y, lr=0.5, tol=1e-15)
    assert h["epochs"] < 200
    np.testing.assert_allclose([t[0] - t[1] * mu / sd, t[1] / sd], lstsq, rtol=1e-9)


# ----------------------------------------------------------------------------- iris
@pytest.fixture(scope="module")
def iris(data_dir):
    path = need(data_dir, "seed", "iris.csv")
    X = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2, 3))
    species = np.loadtxt(path, delimiter=",", skiprows=1, usecols=4, dtype=str)
    assert X.shape == (150, 4) and sorted(set(species)) == ["setosa", "versicolor", "virginica"]
    return X, (species == "virginica").astype(np.int64)


def test_iris_virginica_by_logistic_regression(impl, iris):
    need_kernels("linear_gd")
    X, y = iris
    Z = fastnet.standardize(X)
    theta, hist = impl.logistic_regression(Z, y, lr=0.5, tol=1e-10, max_iter=5000)
    acc = fastnet.accuracy(fastnet.logistic_predict(theta, Z), y)
    # the best linear boundary on all four features misclassifies 2 of 150 (98.7 %)
    assert acc >= 96.0, acc
    assert hist["J"][-1] < 0.1
    assert all(a >= b for a, b in zip(hist["J"], hist["J"][1:]))
    # trained on 70 % (features standardised with the training parameters only),
    # it generalises to the rest
    X_tr, X_te, y_tr, y_te = fastnet.train_test_split(X, y, test_size=0.3, rng=0)
    Z_tr, Z_te = fastnet.standardize(X_tr, X_te)
    theta, _ = impl.logistic_regression(Z_tr, y_tr, lr=0.5, tol=1e-10, max_iter=5000)
    assert fastnet.accuracy(fastnet.logistic_predict(theta, Z_te), y_te) >= 90.0


def test_iris_compared_with_scikit_learn(iris):
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = iris
    Z = fastnet.standardize(X)
    theta, _ = fastnet.logistic_regression(Z, y, lr=0.5, tol=1e-10, max_iter=5000)
    ours = fastnet.accuracy(fastnet.logistic_predict(theta, Z), y)
    theirs = 100 * sklearn.LogisticRegression(C=1e6, max_iter=10000).fit(Z, y).score(Z, y)
    assert ours >= theirs - 1.5, (ours, theirs)


# ------------------------------------------------------------ the course's network
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_course_weights_give_88_1_percent(seed_data, dtype, backend):
    need_kernels("forward_network")
    T1, T2, X, y = seed_data
    assert T1.shape == (50, 785) and T2.shape == (10, 51) and X.shape == (1000, 784)
    model = [T1.astype(dtype), fastnet.Sigmoid, T2.astype(dtype), fastnet.Sigmoid]
    pred = fastnet.predict(model, X.astype(dtype))
    assert fastnet.accuracy(pred, y) == pytest.approx(88.1, abs=1e-9)
    np.testing.assert_array_equal(pred, ref.predict([T1, ref.Sigmoid, T2, ref.Sigmoid], X))


def test_course_weights_cost_is_the_same_everywhere(seed_data, backend):
    need_kernels("backprop_samples", "backprop_batch", "penalty_value", "penalty_grad")
    T1, T2, X, y = seed_data
    X, y = X[:200], y[:200]
    model = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]
    J, g = ref.backprop_vectorized(model, X, y, lam=0.01, penalty="l2")
    for fn in (fastnet.backprop, fastnet.backprop_vectorized):
        Jt, gt = fn(model, X, y, lam=0.01, penalty="l2")
        assert Jt == pytest.approx(J, rel=1e-10)
        for a, b in zip(gt, g):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    J0 = ref.backprop_vectorized(model, X, y)[0]
    assert 0 < J0 < J < J0 + 10  # a trained network's cost, plus the penalty of its weights


def test_course_network_learns_mnist_subset(mnist, backend):
    """A few epochs of the course's 784-50-10 sigmoid network on 1,000 MNIST images."""
    need_kernels("train_epoch", "penalty_value", "forward_network")
    X_tr, y_tr, X_te, y_te = mnist
    X_tr, y_tr = X_tr[:1000], y_tr[:1000]
    rng = np.random.default_rng(0)
    model = [fastnet.init_weights(784, 50, rng=rng), fastnet.Sigmoid,
             fastnet.init_weights(50, 10, rng=rng), fastnet.Sigmoid]
    hist = fastnet.train(model, X_tr, y_tr, optimizer="momentum", batch_size=20, lr=0.3,
                         epochs=4, rng=0, X_test=X_te[:500], y_test=y_te[:500])
    assert hist["J"][-1] < hist["J"][0]
    assert hist["test_acc"][-1] >= 75, hist["test_acc"]  # 83.4 % with the reference
