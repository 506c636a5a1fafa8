r"""The hyper-parameters of the network estimators, read into one configuration.

The estimators take scikit-learn's names as their primary set
(``hidden_layer_sizes``, ``activation``, ``solver``, ``alpha``, ``batch_size``,
``learning_rate``, ``learning_rate_init``, ``max_iter``, ``C``, ...) and the
course's names as aliases (``lr``, ``lam``, ``penalty``, ``max_epochs``,
``optimizer``).  An alias left at ``None`` defers to its scikit-learn
counterpart; giving both (the counterpart away from its default) is an error.
:func:`read_config` turns either set into the dict the training steps of
:mod:`._network` use:

``hidden``, ``activations``, ``output`` (None: decided from the targets),
``loss`` (None: decided from the output), ``optimizer`` (the kernel's name),
``mu``/``rho`` (the kernel's: momentum, or Adam's betas), ``eps``, ``lr`` (a
float or ``'auto'``), ``schedule``/``power_t``, ``batch_size`` (``'auto'``, an
int, or None for full batches), ``penalty``/``lam``/``lam_divisor`` (scikit-learn's
``alpha`` is divided by the batch size, as scikit-learn does, ``1/C`` by the samples), ``max_epochs``,
``tol``, ``n_iter_no_change``, ``stop_rule``, ``early_stopping``,
``validation_fraction``, ``shuffle``, ``verbose``, ``track_accuracy``,
``warm_start``, ``fit_intercept``, ``rng``.
"""
from __future__ import annotations

import numbers

from fastnet._validation import InvalidParameterError
from fastnet.estimators._base import (_ALIASES, _HIDDEN_ACTIVATIONS, _p_bool, _p_choice, _p_int,
                                      _p_random_state, _p_real, _param_error)

__all__ = ["read_config", "SOLVERS", "OPTIMIZERS", "SCHEDULES", "OUT_NAMES"]

#: scikit-learn's solvers that fastnet has ('lbfgs' is not among them).
SOLVERS = ("adam", "sgd")
#: The course's / fastnet's optimisers (the ``optimizer`` alias).
OPTIMIZERS = ("gd", "sgd", "momentum", "rmsprop", "adam", "nesterov")
#: scikit-learn's learning-rate schedules.
SCHEDULES = ("constant", "invscaling", "adaptive")
#: scikit-learn's name of each output activation (``out_activation_``).
OUT_NAMES = {"sigmoid": "logistic", "softmax": "softmax", "linear": "identity",
             "relu": "relu", "tanh": "tanh"}

_MISSING = object()


def _get(est, name, default=_MISSING):
    value = getattr(est, name, _MISSING)
    return default if value is _MISSING else value


def _aliased(est, course, sklearn, sklearn_default):
    """The name whose value counts: the course's alias when it is set, else scikit-learn's."""
    alias = _get(est, course, None)
    if alias is None:
        return sklearn
    value = _get(est, sklearn, sklearn_default)
    try:
        same = value == sklearn_default
    except Exception:  # noqa: BLE001 - arrays and the like compare oddly: they are not defaults
        same = False
    if not same:
        raise InvalidParameterError(
            f"{type(est).__name__}: give {course}={alias!r} or {sklearn}={value!r}, not both "
            f"({course!r} is the course's name for scikit-learn's {sklearn!r})")
    return course


def _hidden(est):
    hidden = _get(est, "hidden_layer_sizes", ())
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        hidden = tuple(hidden)
    except TypeError:
        raise _param_error(est, "hidden_layer_sizes",
                           "a tuple of positive ints (one per hidden layer)", hidden) from None
    if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
        raise _param_error(est, "hidden_layer_sizes",
                           "a tuple of positive ints (one per hidden layer)", hidden)
    return tuple(int(h) for h in hidden)


def _activations(est, n_hidden):
    acts = _get(est, "activation", "relu")
    shown = "{" + ", ".join(repr(x) for x in ("identity", "logistic", "tanh", "relu")) + "}"
    if isinstance(acts, str):
        acts = [acts] * n_hidden
    else:
        try:
            acts = list(acts)
        except TypeError:
            acts = [acts]
        if len(acts) != n_hidden:
            raise _param_error(est, "activation", f"a str among {shown} or a list of {n_hidden} "
                               f"of them (one per hidden layer)", est.activation)
    names = []
    for a in acts:
        key = _ALIASES.get(a.strip().lower(), a.strip().lower()) if isinstance(a, str) else None
        if key not in _HIDDEN_ACTIVATIONS:
            raise _param_error(est, "activation", f"a str among {shown} (fastnet also takes "
                               f"'sigmoid' and 'linear', or a list, one per hidden layer)",
                               est.activation)
        names.append(key)
    return names


def _optimizer(est, c):
    """The kernel's optimiser and its (mu, rho) from ``optimizer`` or ``solver``."""
    momentum = _p_real(est, "momentum", lo=0, hi=1) if hasattr(est, "momentum") else 0.9
    if momentum == 1:
        raise _param_error(est, "momentum", "a float in the range [0, 1)", est.momentum)
    beta_1 = _p_real(est, "beta_1", lo=0, hi=1, hi_open=True) if hasattr(est, "beta_1") else 0.9
    beta_2 = _p_real(est, "beta_2", lo=0, hi=1, hi_open=True) if hasattr(est, "beta_2") else 0.999
    rho = _p_real(est, "rho", lo=0, hi=1, hi_open=True) if hasattr(est, "rho") else 0.9
    if _get(est, "optimizer", None) is not None or not hasattr(est, "solver"):
        name = _p_choice(est, "optimizer", OPTIMIZERS)
    else:
        solver = _get(est, "solver")
        if isinstance(solver, str) and solver.strip().lower() == "lbfgs":
            raise _param_error(est, "solver", "a str among {'adam', 'sgd'} (fastnet has no "
                               "L-BFGS solver; its 'optimizer' parameter also takes 'gd', "
                               "'momentum', 'rmsprop', 'nesterov')", solver)
        solver = _p_choice(est, "solver", SOLVERS)
        if solver == "adam":
            name = "adam"
        elif momentum == 0:
            name = "sgd"
        else:
            name = "nesterov" if _p_bool(est, "nesterovs_momentum") else "momentum"
    if name == "adam":
        return name, beta_1, beta_2
    return name, momentum, rho


def _learning_rate(est, c):
    key = _aliased(est, "lr", "learning_rate_init", 0.001)
    value = _get(est, key)
    if est._lr_auto and isinstance(value, str) and value == "auto":
        return "auto"
    try:
        return _p_real(est, key, lo=0, lo_open=True)
    except InvalidParameterError:
        if not est._lr_auto:
            raise
        raise _param_error(est, key, "'auto' or a float in the range (0, inf)", value) from None


def _batch_size(est):
    value = _get(est, "batch_size", None)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return _p_int(est, "batch_size", lo=1)
    except InvalidParameterError:
        raise _param_error(est, "batch_size", "'auto', None or an int in the range [1, inf)",
                           value) from None


def _penalty(est, c):
    r"""(penalty, lam, divisor): the course's ``penalty``/``lam``, or scikit-learn's ``alpha`` / ``C``.

    ``divisor`` says what the strength is divided by to give the course's
    :math:`\lambda` (the penalty of the *mean* cost): nothing for ``lam``;
    the batch size for ``alpha`` (scikit-learn's MLPs add
    :math:`\frac{\alpha}{2B}\lVert W\rVert^2` to the mean loss of a batch of
    :math:`B`); the number of samples for ``1/C`` (scikit-learn's logistic
    regression minimises :math:`C\sum_i \ell_i + \frac12\lVert w\rVert^2`).
    """
    pen = _p_choice(est, "penalty", ("l1", "l2", "none"), allow_none=True) \
        if hasattr(est, "penalty") else "l2"
    pen = None if pen == "none" else pen
    if _get(est, "lam", None) is not None:
        return pen, _p_real(est, "lam", lo=0), None
    if hasattr(est, "alpha"):
        return pen, _p_real(est, "alpha", lo=0), "batch"
    if hasattr(est, "C"):
        C = _p_real(est, "C", lo=0, lo_open=True)
        return pen, 1.0 / C, "samples"
    return pen, 0.0, None


def read_config(est):
    """The configuration dict of estimator ``est`` (see the module's docstring)."""
    c = {}
    c["hidden"] = _hidden(est)
    c["activations"] = _activations(est, len(c["hidden"]))
    c["output"] = est._output_activation()
    c["loss"] = _get(est, "loss", None)
    c["optimizer"], c["mu"], c["rho"] = _optimizer(est, c)
    c["lr"] = _learning_rate(est, c)
    c["schedule"] = _p_choice(est, "learning_rate", SCHEDULES) \
        if hasattr(est, "learning_rate") else "constant"
    c["power_t"] = _p_real(est, "power_t", lo=0) if hasattr(est, "power_t") else 0.5
    c["batch_size"] = _batch_size(est)
    eps_key = _aliased(est, "eps", "epsilon", 1e-8) if hasattr(est, "epsilon") else "eps"
    c["eps"] = _p_real(est, eps_key, lo=0, lo_open=True) if hasattr(est, eps_key) else 1e-8
    c["penalty"], c["lam"], c["lam_divisor"] = _penalty(est, c)
    epochs_key = _aliased(est, "max_epochs", "max_iter", est._max_iter_default) \
        if hasattr(est, "max_iter") else "max_epochs"
    c["max_epochs"] = _p_int(est, epochs_key, lo=1)
    c["tol"] = _p_real(est, "tol", lo=0)
    c["n_iter_no_change"] = _p_int(est, "n_iter_no_change", lo=1)
    c["stop_rule"] = est._stop_rule
    c["early_stopping"] = _p_bool(est, "early_stopping")
    c["validation_fraction"] = _p_real(est, "validation_fraction", lo=0, hi=1, lo_open=True,
                                       hi_open=True)
    c["shuffle"] = _p_bool(est, "shuffle")
    verbose = _get(est, "verbose", 0)
    c["verbose"] = int(verbose) if isinstance(verbose, bool) else _p_int(est, "verbose", lo=0)
    c["track_accuracy"] = _p_bool(est, "track_accuracy") if hasattr(est, "track_accuracy") \
        else False
    c["warm_start"] = _p_bool(est, "warm_start") if hasattr(est, "warm_start") else False
    c["fit_intercept"] = _p_bool(est, "fit_intercept") if hasattr(est, "fit_intercept") else True
    if hasattr(est, "max_fun"):
        _p_int(est, "max_fun", lo=1)  # L-BFGS only: checked, unused
    c["rng"] = _p_random_state(est)
    return c
