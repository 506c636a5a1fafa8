"""The course's activations, computed by the active backend.

``fastnet.Sigmoid`` & co. are the classes of :mod:`fastnet.reference.activations`
(same names, same ``f``/``df`` static methods, same ``name``) whose ``f`` and
``df`` run the active backend's ``activation`` / ``activation_grad`` kernels.
Either set of classes may appear in a model list.
"""
import numpy as np

from fastnet import _backend
from fastnet._validation import as_float_array
from fastnet.reference import activations as _ref

__all__ = ["Linear", "Sigmoid", "ReLu", "TanH", "Softmax", "ACTIVATIONS"]


def _apply(code, z, grad):
    arr = as_float_array(z, "z", ndim=tuple(range(0, 33)), allow_empty=True, finite=False)
    out = np.empty_like(arr)
    if arr.size:
        K = _backend.kernels()
        if code == 4:  # softmax: rows
            Z2 = arr.reshape(-1, arr.shape[-1]) if arr.ndim else arr.reshape(1, 1)
            K.activation(code, Z2, out.reshape(Z2.shape))
        else:
            (K.activation_grad if grad else K.activation)(code, arr.reshape(-1), out.reshape(-1))
    return out[()] if out.ndim == 0 else out


def _make(ref_cls):
    code = ref_cls.code

    def f(z):
        return _apply(code, z, False)

    def df(z):
        if code == 4:
            return ref_cls.df(z)
        return _apply(code, z, True)

    f.__doc__ = f"{ref_cls.__name__}.f(z) on the active backend.\n\n{ref_cls.__doc__}"
    df.__doc__ = f"{ref_cls.__name__}.df(z) on the active backend."
    return type(ref_cls.__name__, (ref_cls,), {
        "f": staticmethod(f), "df": staticmethod(df), "__doc__": ref_cls.__doc__,
        "__module__": __name__})


Linear = _make(_ref.Linear)
Sigmoid = _make(_ref.Sigmoid)
ReLu = _make(_ref.ReLu)
TanH = _make(_ref.TanH)
Softmax = _make(_ref.Softmax)

ACTIVATIONS = {cls.name: cls for cls in (Linear, Sigmoid, ReLu, TanH, Softmax)}
