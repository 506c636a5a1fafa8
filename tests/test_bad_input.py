"""Bad input: a ValueError/TypeError naming the argument and what was expected.

Never a numpy broadcasting error (or any other error) from deep inside.
"""
import numpy as np
import pytest

import fastnet
from fastnet import reference as ref
from fastnet.reference import perceptron as ref_perceptron

RNG = np.random.default_rng(0)
T1 = RNG.uniform(-1, 1, size=(4, 4))   # 3 inputs -> 4 hidden
T2 = RNG.uniform(-1, 1, size=(3, 5))   # 4 hidden -> 3 outputs
MODEL = [T1, fastnet.Sigmoid, T2, fastnet.Sigmoid]
X = RNG.normal(size=(5, 3))
Y = np.array([0, 1, 2, 1, 0])

BACKPROPS = [fastnet.backprop, fastnet.backprop_vectorized, ref.backprop, ref.backprop_vectorized]
TRAINS = [fastnet.train, ref.train]
PREDICTS = [fastnet.predict, ref.predict, fastnet.feedforward, ref.feedforward]


def _ids(fns):
    return [f"{fn.__module__}.{fn.__name__}" for fn in fns]


def _raises(exc, match, fn, *args, **kwargs):
    with pytest.raises(exc, match=match) as info:
        fn(*args, **kwargs)
    assert "broadcast" not in str(info.value)
    return info


def _with_nan(A, value=np.nan, where=(1, 2)):
    B = A.copy()
    B[where] = value
    return B


# ----------------------------------------------------------------- the data X
X_CASES = [
    ("wrong width", X[:, :2], ValueError,
     r"X has 2 features but model\[0\] has shape \(4, 4\), which expects 3 features"),
    ("nan", _with_nan(X), ValueError, r"X contains nan at index \(1, 2\); expected only finite"),
    ("inf", _with_nan(X, np.inf), ValueError, r"X contains inf at index \(1, 2\)"),
    ("-inf", _with_nan(X, -np.inf, (0, 0)), ValueError, r"X contains -inf at index \(0, 0\)"),
    ("empty", np.empty((0, 3)), ValueError, r"X is empty"),
    ("3-D", X[None], ValueError, r"X must be 2-D"),
    ("strings", np.array([["a", "b", "c"]] * 5), TypeError, r"X must be an array of numbers"),
    ("complex", X + 1j, TypeError, r"X must be real numbers"),
    ("None", None, TypeError, r"X must be an array of numbers, got None"),
    ("ragged", [[1.0, 2.0, 3.0], [1.0]], (ValueError, TypeError), r"X"),
]


@pytest.mark.parametrize("case", X_CASES, ids=[c[0] for c in X_CASES])
@pytest.mark.parametrize("fn", BACKPROPS, ids=_ids(BACKPROPS))
def test_backprop_bad_X(fn, case):
    name, bad, exc, match = case
    _raises(exc, match, fn, MODEL, bad, np.array([], dtype=int) if name == "empty" else Y)


@pytest.mark.parametrize("case", X_CASES, ids=[c[0] for c in X_CASES])
@pytest.mark.parametrize("fn", TRAINS, ids=_ids(TRAINS))
def test_train_bad_X(fn, case):
    _, bad, exc, match = case
    _raises(exc, match, fn, [T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Sigmoid], bad, Y)


@pytest.mark.parametrize("case", [c for c in X_CASES if c[0] != "3-D"],
                         ids=[c[0] for c in X_CASES if c[0] != "3-D"])
@pytest.mark.parametrize("fn", PREDICTS, ids=_ids(PREDICTS))
def test_predict_bad_X(fn, case):
    _, bad, exc, match = case
    _raises(exc, match, fn, MODEL, bad)


@pytest.mark.parametrize("fn", [fastnet.forward, ref.forward], ids=["top", "reference"])
def test_forward_bad_input(fn):
    _raises(ValueError, r"X has 2 features but Theta\[0\] has shape \(4, 4\)|"
                        r"X has 2 features but Theta has shape", fn, T1, X[:, :2], fastnet.Sigmoid)
    _raises(ValueError, r"X contains nan", fn, T1, _with_nan(X), fastnet.Sigmoid)
    _raises(ValueError, r"Theta must be a 2-D weight matrix", fn, T1[0], X, fastnet.Sigmoid)
    _raises(TypeError, r"active must be one of fastnet's activations", fn, T1, X, "swish")
    _raises(TypeError, r"active must be one of fastnet's activations", fn, T1, X, np.tanh)
    _raises(ValueError, r"Theta contains nan", fn, _with_nan(T1), X, fastnet.Sigmoid)


# ------------------------------------------------------------------- the targets y
Y_CASES = [
    ("short", Y[:4], ValueError, r"y has 4 labels but X has 5 rows; expected one label per row"),
    ("label too big", np.array([0, 1, 3, 1, 0]), ValueError,
     r"y has label 3 but the network has 3 outputs; expected labels in 0\.\.2"),
    ("negative label", np.array([0, -1, 2, 1, 0]), ValueError,
     r"y has label -1; expected labels in 0\.\.K-1"),
    ("fractional label", np.array([0, 1.5, 2, 1, 0]), ValueError,
     r"y must hold integer class labels 0\.\.K-1, got non-integer values such as 1\.5"),
    ("nan label", np.array([0, np.nan, 2, 1, 0]), ValueError, r"y contains nan"),
    ("string labels", np.array(["a", "b", "c", "a", "b"]), TypeError, r"y must hold integer"),
    ("targets wrong shape", np.zeros((5, 2)), ValueError,
     r"y has shape \(5, 2\); expected \(5, 3\)"),
    ("targets with nan", _with_nan(np.zeros((5, 3)), where=(4, 1)), ValueError,
     r"y contains nan at index \(4, 1\)"),
    ("3-D", np.zeros((5, 3, 1)), ValueError, r"y must be a 1-D array"),
    ("None", None, TypeError, r"y must be an array of integer labels, got None"),
]


@pytest.mark.parametrize("case", Y_CASES, ids=[c[0] for c in Y_CASES])
@pytest.mark.parametrize("fn", BACKPROPS + TRAINS, ids=_ids(BACKPROPS + TRAINS))
def test_bad_targets(fn, case):
    _, bad, exc, match = case
    _raises(exc, match, fn, [T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Sigmoid], X, bad)


@pytest.mark.parametrize("fn", BACKPROPS, ids=_ids(BACKPROPS))
def test_single_output_targets(fn):
    model = [T1, fastnet.Sigmoid, np.ones((1, 5)), fastnet.Sigmoid]
    _raises(ValueError, r"y has 4 values but X has 5 rows; expected one target per row",
            fn, model, X, np.zeros(4))
    _raises(ValueError, r"y contains inf", fn, model, X, np.array([0, 1, np.inf, 0, 1.0]))


# ---------------------------------------------------------------------- the model
MODEL_CASES = [
    ("not alternating", [T1, T2, fastnet.Sigmoid, fastnet.Sigmoid], TypeError,
     r"model\[1\] must be an activation \(Sigmoid, ReLu, \.\.\.\), got an array; the model "
     r"list must alternate weights and activations"),
    ("activation first", [fastnet.Sigmoid, T1, fastnet.Sigmoid, T2], TypeError,
     r"model\[0\] must be a weight matrix.*alternate weights and activations"),
    ("odd length", [T1, fastnet.Sigmoid, T2], ValueError,
     r"model must alternate weight matrices and activations .*got 3 items"),
    ("empty", [], ValueError, r"model must alternate weight matrices and activations"),
    ("not a list", {"Theta1": T1}, TypeError, r"model must be a list \[Theta1, activation1"),
    ("layers do not chain", [T1, fastnet.Sigmoid, T2[:, :3], fastnet.Sigmoid], ValueError,
     r"model\[2\] has shape \(3, 3\): its 3 columns must be the previous layer's 4 outputs "
     r"\+ 1 bias column"),
    ("unknown activation", [T1, "swish", T2, fastnet.Sigmoid], TypeError,
     r"model\[1\] must be one of fastnet's activations.*got 'swish'"),
    ("numpy function as activation", [T1, np.tanh, T2, fastnet.Sigmoid], TypeError,
     r"model\[1\] must be one of fastnet's activations"),
    ("hidden softmax", [T1, fastnet.Softmax, T2, fastnet.Sigmoid], ValueError,
     r"model\[1\]: Softmax is only allowed as the output activation"),
    ("1-D Theta", [T1[0], fastnet.Sigmoid], ValueError,
     r"model\[0\] must be a 2-D weight matrix of shape \(L_out, L_in \+ 1\)"),
    ("Theta without weights", [np.ones((3, 1)), fastnet.Sigmoid], ValueError,
     r"model\[0\] must be a 2-D weight matrix"),
    ("Theta with nan", [_with_nan(T1), fastnet.Sigmoid, T2, fastnet.Sigmoid], ValueError,
     r"model\[0\] contains nan at index \(1, 2\)"),
    ("Theta of strings", [np.array([["a", "b"]]), fastnet.Sigmoid], TypeError,
     r"model\[0\] must be a numeric weight matrix"),
    ("string as Theta", ["T1", fastnet.Sigmoid], TypeError, r"model\[0\] must be a weight matrix"),
]


ALL = BACKPROPS + PREDICTS + TRAINS


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
@pytest.mark.parametrize("fn", ALL, ids=_ids(ALL))
def test_bad_model(fn, case):
    _, bad, exc, match = case
    args = (bad, X) if fn in PREDICTS else (bad, X, Y)
    _raises(exc, match, fn, *args)


@pytest.mark.parametrize("fn", TRAINS, ids=_ids(TRAINS))
def test_train_needs_a_mutable_list(fn):
    _raises(TypeError, r"model must be a list \(it is updated in place\), got a tuple", fn,
            (T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Sigmoid), X, Y)


# --------------------------------------------------------------- hyper-parameters
BACKPROP_ARGS = [
    (dict(penalty="l3"), ValueError, r"penalty must be one of None, 'none', 'l1', 'l2', got 'l3'"),
    (dict(penalty=2), ValueError, r"penalty must be one of"),
    (dict(loss="hinge"), ValueError, r"loss must be one of 'cross_entropy', 'quadratic', "
                                     r"'log_loss', got 'hinge'"),
    (dict(lam=-0.1), ValueError, r"lam must be in \[0, inf\], got -0\.1"),
    (dict(lam=np.nan), ValueError, r"lam must be finite"),
    (dict(lam="0.1"), TypeError, r"lam must be a real number, got '0\.1'"),
    (dict(lam=True), TypeError, r"lam must be a real number"),
]


@pytest.mark.parametrize("kw,exc,match", BACKPROP_ARGS, ids=[str(a[0]) for a in BACKPROP_ARGS])
@pytest.mark.parametrize("fn", BACKPROPS + TRAINS, ids=_ids(BACKPROPS + TRAINS))
def test_bad_backprop_arguments(fn, kw, exc, match):
    _raises(exc, match, fn, [T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Sigmoid], X, Y, **kw)


@pytest.mark.parametrize("fn", BACKPROPS + TRAINS, ids=_ids(BACKPROPS + TRAINS))
def test_softmax_output_needs_log_loss(fn):
    model = [T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Softmax]
    _raises(ValueError, r"loss must be 'log_loss' with a Softmax output layer, got "
                        r"'cross_entropy'", fn, model, X, Y)


TRAIN_ARGS = [
    (dict(optimizer="adagrad"), ValueError,
     r"optimizer must be one of 'gd', 'sgd', 'momentum', 'rmsprop', 'adam', 'nesterov', "
     r"got 'adagrad'"),
    (dict(lr=-0.1), ValueError, r"lr must be in \(0, inf\], got -0\.1"),
    (dict(lr=0), ValueError, r"lr must be in \(0, inf\], got 0"),
    (dict(lr=np.inf), ValueError, r"lr must be finite"),
    (dict(lr=None), TypeError, r"lr must be a real number, got None"),
    (dict(epochs=0), ValueError, r"epochs must be an integer in \[1, inf\], got 0"),
    (dict(epochs=2.5), TypeError, r"epochs must be an integer, got 2\.5"),
    (dict(epochs=-3), ValueError, r"epochs must be an integer in \[1, inf\]"),
    (dict(batch_size=0), ValueError, r"batch_size must be an integer in \[1, inf\], got 0"),
    (dict(batch_size=1.5), TypeError, r"batch_size must be an integer, got 1\.5"),
    (dict(optimizer="momentum", momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (dict(optimizer="rmsprop", rho=-0.1), ValueError, r"rho must be in \[0, 1\)"),
    (dict(optimizer="rmsprop", eps=0.0), ValueError, r"eps must be in \(0, inf\]"),
    (dict(tol=-1e-3), ValueError, r"tol must be in \[0, inf\]"),
    (dict(rng=-1), ValueError, r"rng must be a non-negative seed"),
    (dict(rng="seed"), TypeError, r"rng must be None, an int seed or a numpy\.random\.Generator"),
    (dict(X_test=X), ValueError, r"X_test and y_test must be given together"),
    (dict(X_test=X[:, :2], y_test=Y), ValueError,
     r"X_test has 2 features but model\[0\] has shape \(4, 4\)"),
    (dict(X_test=_with_nan(X), y_test=Y), ValueError, r"X_test contains nan"),
    (dict(X_test=X, y_test=Y[:3]), ValueError, r"y_test has 3 labels but X has 5 rows"),
    (dict(X_test=X, y_test=np.array([0, 1, 2, 3, 0])), ValueError,
     r"y_test has label 3 but the network has 3 outputs"),
]


@pytest.mark.parametrize("kw,exc,match", TRAIN_ARGS, ids=[str(a[0])[:40] for a in TRAIN_ARGS])
@pytest.mark.parametrize("fn", TRAINS, ids=_ids(TRAINS))
def test_bad_train_arguments(fn, kw, exc, match):
    model = [T1.copy(), fastnet.Sigmoid, T2.copy(), fastnet.Sigmoid]
    saved = [m.copy() for m in model[0::2]]
    _raises(exc, match, fn, model, X, Y, **kw)
    for a, b in zip(model[0::2], saved):  # a refused call leaves the model alone
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------- init_weights, one_hot, accuracy
@pytest.mark.parametrize("mod", [fastnet, ref], ids=["top", "reference"])
def test_bad_small_functions(mod):
    _raises(ValueError, r"L_in must be an integer in \[1, inf\], got 0", mod.init_weights, 0, 3)
    _raises(TypeError, r"L_out must be an integer, got 2\.0", mod.init_weights, 3, 2.0)
    _raises(ValueError, r"epsilon must be in \(0, inf\]", mod.init_weights, 3, 2, epsilon=0)
    _raises(TypeError, r"dtype must be float32 or float64", mod.init_weights, 3, 2, dtype=int)
    _raises(TypeError, r"rng must be None, an int seed", mod.init_weights, 3, 2, rng=1.5)
    _raises(ValueError, r"pos has label 5 but the network has 3 outputs", mod.one_hot, 3, 5)
    _raises(ValueError, r"pos has label -1", mod.one_hot, 3, [0, -1])
    _raises(ValueError, r"K must be an integer in \[1, inf\]", mod.one_hot, 0, 0)
    _raises(ValueError, r"y_ has 2 predictions but y has 3 labels", mod.accuracy, [1, 2], [1, 2, 3])
    _raises(ValueError, r"y_ and y are empty", mod.accuracy, [], [])
    _raises(ValueError, r"y_ and y must be 1-D", mod.accuracy, np.zeros((2, 2)), np.zeros((2, 2)))


# ------------------------------------------------------------- linear models
LINEAR_FITS = [fastnet.linear_regression, ref.linear_regression,
               fastnet.logistic_regression, ref.logistic_regression]


@pytest.mark.parametrize("fit", LINEAR_FITS, ids=_ids(LINEAR_FITS))
def test_bad_linear_regression_input(fit):
    Xl, yl = RNG.normal(size=(6, 2)), np.array([0, 1, 0, 1, 1, 0])
    _raises(ValueError, r"y has 5 (values|labels) but X has 6 rows", fit, Xl, yl[:5])
    _raises(ValueError, r"X contains nan", fit, _with_nan(Xl, where=(2, 1)), yl)
    _raises(ValueError, r"X is empty", fit, np.empty((0, 2)), np.empty(0))
    _raises(ValueError, r"lr must be in \(0, inf\]", fit, Xl, yl, lr=-1.0)
    _raises(ValueError, r"tol must be in \[0, inf\]", fit, Xl, yl, tol=-1.0)
    _raises(ValueError, r"max_iter must be an integer in \[1, inf\]", fit, Xl, yl, max_iter=0)
    _raises(ValueError, r"theta has 2 entries; expected 3 \(bias theta\[0\]", fit, Xl, yl,
            theta=np.zeros(2))
    if "logistic" in fit.__name__:
        _raises(ValueError, r"y has label 2 but the network has 2 outputs; expected labels in "
                            r"0\.\.1", fit, Xl, np.array([0, 1, 2, 1, 1, 0]))
    else:
        _raises(ValueError, r"y contains inf", fit, Xl, np.array([0, 1, np.inf, 1, 1, 0.0]))


@pytest.mark.parametrize("fn", [fastnet.linear_cost, fastnet.linear_gradient,
                                fastnet.logistic_cost, fastnet.logistic_gradient])
def test_bad_cost_input(fn):
    Xl, yl = RNG.normal(size=(6, 2)), np.array([0, 1, 0, 1, 1, 0])
    _raises(ValueError, r"theta has 4 entries; expected 3", fn, np.zeros(4), Xl, yl)
    _raises(ValueError, r"y has 5", fn, np.zeros(3), Xl, yl[:5])


def test_bad_linear_predict_input():
    _raises(ValueError, r"theta has 2 entries; expected 4", fastnet.linear_predict, np.zeros(2),
            np.zeros((3, 3)))
    _raises(ValueError, r"threshold must be in \[0, 1\]", fastnet.logistic_predict, np.zeros(2),
            np.zeros((3, 1)), threshold=1.5)


# ---------------------------------------------------------------------- perceptron
@pytest.mark.parametrize("train", [fastnet.perceptron.train, ref_perceptron.train],
                         ids=["top", "reference"])
def test_bad_perceptron_input(train):
    X2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = [0, 0, 0, 1]
    _raises(ValueError, r"weights has 2 entries; expected 3 \(bias weights\[0\]", train,
            np.zeros(2), X2, y)
    _raises(ValueError, r"y has 3 labels but X has 4 rows", train, np.zeros(3), X2, y[:3])
    _raises(ValueError, r"y has label 2 but the network has 2 outputs", train, np.zeros(3), X2,
            [0, 2, 0, 1])
    _raises(ValueError, r"X contains nan", train, np.zeros(3), _with_nan(X2, where=(0, 0)), y)
    _raises(ValueError, r"epochs must be an integer in \[1, inf\]", train, np.zeros(3), X2, y,
            epochs=0)
    _raises(ValueError, r"lr must be in \(0, inf\]", train, np.zeros(3), X2, y, lr=0)
    _raises(ValueError, r"weights has 3 entries; expected 2", ref_perceptron.predict,
            np.zeros(3), [1.0])


def test_cached_network_layouts_still_check_params_and_follow_the_callers_arrays():
    """The kernels' checked layouts are cached by the bytes of (sizes, kinds): a later call
    with the wrong params still gets the message, and a sizes array changed in place after a
    call is checked as the new network, not served the old one."""
    from fastnet import _kernel_checks as kc
    sizes = np.array([3, 4, 2], dtype=np.int64)
    kinds = np.array([1, 1], dtype=np.int64)
    params = np.zeros((3 + 1) * 4 + (4 + 1) * 2)
    a = kc.Layout("k", params, sizes, kinds)
    b = kc.Layout("k", params, sizes, kinds)
    assert a is b and a.n_params == params.shape[0]
    with pytest.raises(ValueError, match=r"k: params has 5 entries, expected 26"):
        kc.Layout("k", np.zeros(5), sizes, kinds)
    with pytest.raises(TypeError, match="params must have dtype float32 or float64"):
        kc.Layout("k", np.zeros(26, dtype=np.int64), sizes, kinds)
    sizes[1] = 5  # in place: now a 3-5-2 network
    with pytest.raises(ValueError, match="expected 32"):
        kc.Layout("k", params, sizes, kinds)
    c = kc.Layout("k", np.zeros(32), sizes, kinds)
    assert c.n_params == 32 and a.sizes.tolist() == [3, 4, 2]
    kinds[0] = 99
    with pytest.raises(ValueError, match="kinds must be activation codes"):
        kc.Layout("k", np.zeros(32), sizes, kinds)
