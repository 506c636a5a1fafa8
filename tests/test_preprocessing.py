"""Feature scaling: fitted on training data, applied to test data with the training parameters."""
import numpy as np
import pytest

import fastnet
from fastnet import Rescaler, Standardizer, Normalizer

SCALERS = [Rescaler, Standardizer, Normalizer]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    train = rng.normal(loc=[1.0, -5.0, 100.0], scale=[1.0, 0.1, 30.0], size=(40, 3))
    test = rng.normal(loc=[1.0, -5.0, 100.0], scale=[1.0, 0.1, 30.0], size=(15, 3))
    return train, test


def test_formulas_on_training_data():
    train, _ = _data()
    r = Rescaler().fit_transform(train)
    np.testing.assert_allclose(r.min(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(r.max(axis=0), 1, rtol=1e-15)
    s = Standardizer().fit_transform(train)
    np.testing.assert_allclose(s.mean(axis=0), 0, atol=1e-14)
    np.testing.assert_allclose(s.std(axis=0), 1, rtol=1e-14)
    n = Normalizer().fit_transform(train)
    np.testing.assert_allclose(n.mean(axis=0), 0, atol=1e-14)
    np.testing.assert_allclose(n.max(axis=0) - n.min(axis=0), 1, rtol=1e-14)


@pytest.mark.parametrize("cls", SCALERS)
def test_test_data_uses_training_parameters(cls):
    train, test = _data()
    scaler = cls().fit(train)
    expected = (test - scaler.center_) / scaler.scale_
    np.testing.assert_allclose(scaler.transform(test), expected, rtol=1e-15)
    # the parameters are the training set's, not the test set's
    refit = cls().fit(test)
    assert not np.allclose(refit.center_, scaler.center_)
    if cls is Rescaler:
        np.testing.assert_array_equal(scaler.center_, train.min(axis=0))
        np.testing.assert_array_equal(scaler.scale_, np.ptp(train, axis=0))
    elif cls is Standardizer:
        np.testing.assert_allclose(scaler.center_, train.mean(axis=0), rtol=1e-15)
        np.testing.assert_allclose(scaler.scale_, train.std(axis=0), rtol=1e-15)
    else:
        np.testing.assert_allclose(scaler.center_, train.mean(axis=0), rtol=1e-15)
        np.testing.assert_allclose(scaler.scale_, np.ptp(train, axis=0), rtol=1e-15)


@pytest.mark.parametrize("fn,cls", [(fastnet.rescale, Rescaler),
                                    (fastnet.standardize, Standardizer),
                                    (fastnet.normalize, Normalizer)])
def test_functions_fit_on_the_first_argument(fn, cls):
    train, test = _data()
    a_train, a_test = fn(train, test)
    scaler = cls().fit(train)
    np.testing.assert_array_equal(a_train, scaler.transform(train))
    np.testing.assert_array_equal(a_test, scaler.transform(test))
    np.testing.assert_array_equal(fn(train), a_train)
    a_list = fn(train.tolist(), test.tolist())[1]  # lists work too
    np.testing.assert_array_equal(a_list, a_test)


@pytest.mark.parametrize("cls", SCALERS)
def test_inverse_transform(cls):
    train, test = _data()
    scaler = cls().fit(train)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(test)), test,
                               rtol=1e-13)


@pytest.mark.parametrize("value", [0.0, 0.1, 0.7, 1 / 3, 2.2, 1e5 + 0.1, -3.0])
@pytest.mark.parametrize("cls", SCALERS)
def test_constant_features_are_not_divided_by_zero(cls, value):
    """A constant feature maps to 0 (not to +-1 or huge numbers from a rounding-error
    'spread' such as std([0.1] * 7) = 1.4e-17); other features are unaffected."""
    train, test = _data()
    for m in (3, 7, 10, 150):
        X = np.resize(train, (m, 3)).copy()
        X[:, 1] = value
        scaler = cls().fit(X)
        with np.errstate(all="raise"):
            out = scaler.transform(X)
        assert scaler.scale_[1] == 1.0, (m, value)
        np.testing.assert_allclose(out[:, 1], 0.0, atol=1e-12, err_msg=f"m={m}")
        np.testing.assert_allclose(out[:, [0, 2]], cls().fit(X[:, [0, 2]]).transform(X[:, [0, 2]]))
        np.testing.assert_allclose(scaler.inverse_transform(out), X, rtol=1e-12)
        # a test value off the constant shifts by the difference
        T = X[:2].copy()
        T[:, 1] = value + 1
        np.testing.assert_allclose(scaler.transform(T)[:, 1], 1.0, rtol=1e-9)


@pytest.mark.parametrize("cls", SCALERS)
def test_float32_stays_float32(cls):
    train, test = _data()
    out = cls().fit(train.astype(np.float32)).transform(test.astype(np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize("cls", SCALERS)
def test_errors(cls):
    train, test = _data()
    with pytest.raises(ValueError, match="not fitted"):
        cls().transform(test)
    with pytest.raises(ValueError, match="not fitted"):
        cls().inverse_transform(test)
    scaler = cls().fit(train)
    with pytest.raises(ValueError, match=r"X has 2 features.*fitted with 3"):
        scaler.transform(test[:, :2])
    with pytest.raises(ValueError, match="X"):
        cls().fit(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="X"):
        cls().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="X must be 2-D"):
        cls().fit(np.ones(3))


def test_sklearn_style_params():
    s = Standardizer()
    assert s.get_params() == {}
    assert s.set_params() is s
    with pytest.raises(ValueError, match="no parameters"):
        s.set_params(with_mean=False)
    assert repr(s) == "Standardizer()"


def test_reference_exports_the_same_scalers():
    assert fastnet.reference.Standardizer is Standardizer
    assert fastnet.reference.standardize is fastnet.standardize


# ------------------------------------------------------------------------- hypothesis
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 5)),
              elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)),
       st.sampled_from(SCALERS))
def test_hypothesis_round_trip_and_finite(X, cls):
    scaler = cls().fit(X)
    Z = scaler.transform(X)
    assert np.all(np.isfinite(Z))
    assert np.all(scaler.scale_ > 0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-9,
                               atol=1e-9 * max(1.0, float(np.abs(X).max())))
    const = np.ptp(X, axis=0) == 0
    np.testing.assert_array_equal(Z[:, const], 0.0)
    if cls is Rescaler:
        assert Z.min() >= -1e-12 and Z.max() <= 1 + 1e-12


# ------------------------------------------------------------------------- overflow (issue 13)
@pytest.mark.parametrize("scale", [1e30, 1e37])
def test_float32_values_near_the_top_of_float32_scale(scale):
    """float32 values near 1e30 standardised to zeros, near 3e38 rescaled to NaN: the
    parameters and the results are computed in float64 now."""
    rng = np.random.default_rng(1)
    X = (rng.normal(size=(50, 3)) * scale).astype(np.float32)
    for fn, cls in [(fastnet.standardize, Standardizer), (fastnet.rescale, Rescaler),
                    (fastnet.normalize, Normalizer)]:
        Z = fn(X)
        assert Z.dtype == np.float32 and np.isfinite(Z).all()
        expected = cls().fit(X.astype(np.float64)).transform(X.astype(np.float64))
        np.testing.assert_allclose(Z, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fastnet.standardize(X).std(axis=0), 1, rtol=1e-5)


def test_rescale_across_the_whole_float32_range():
    X = np.array([[3e38, -3.4e38], [-3.3e38, 3.4e38], [1e38, 0.0]], dtype=np.float32)
    Z = fastnet.rescale(X)
    assert np.isfinite(Z).all() and Z.min() == 0 and Z.max() == 1
    np.testing.assert_allclose(Z[:, 1], [0, 1, 0.5], rtol=1e-6)
    np.testing.assert_allclose(Rescaler().fit(X).inverse_transform(Z), X, rtol=1e-6)


def test_float64_near_its_largest_values():
    X = np.array([[1.7e308, 1.0], [1.6e308, 2.0], [-1e308, 3.0]])
    Z = fastnet.standardize(X)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-12)
    with pytest.raises(FloatingPointError, match=r"X_train: the scale of feature 0.*overflows "
                                                 r"float64"):
        fastnet.rescale(np.array([[1.7e308], [-1.7e308]]))   # a range beyond float64


def test_results_that_overflow_raise_naming_the_argument():
    train = np.array([[0.0, 0.0], [1e-30, 1.0]], dtype=np.float32)
    with pytest.raises(FloatingPointError, match=r"X_test\[0, 0\] scales to .*overflows float32"):
        fastnet.standardize(train, np.array([[1e10, 2]], dtype=np.float32))
    with pytest.raises(FloatingPointError, match=r"X\[0, 0\] scales to inf.*overflows float64"):
        Standardizer().fit([[0.0], [1e-150]]).transform([[1e200]])
    with pytest.raises(FloatingPointError, match="maps back"):
        Rescaler().fit(np.array([[0.0], [1e38]], np.float32)).inverse_transform(
            np.array([[1e3]], np.float32))


@pytest.mark.parametrize("fn", [fastnet.rescale, fastnet.standardize, fastnet.normalize])
def test_functions_name_x_train_and_x_test(fn):
    train, test = _data()
    with pytest.raises(TypeError, match="X_test must be an array of numbers"):
        fn(train, [["a", "b", "c"]])
    with pytest.raises(ValueError, match=r"X_test has 2 features"):
        fn(train, test[:, :2])
    with pytest.raises(ValueError, match="X_test contains nan"):
        fn(train, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="X_train contains inf"):
        fn(np.full((2, 3), np.inf), test)
