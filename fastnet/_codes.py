"""The integer codes every backend's kernels share: one definition.

The kernels take small integers for the choices of a call (which activation
a layer has, which loss, penalty and optimiser); this module is the only
place they are defined.  The numpy reference, the Numba kernels and the
API layer use these enums; the Cython kernels use ``src_cython/_codes.pxi``,
which is generated from this file (``python -m fastnet._codes``) and checked
against it by ``tests/test_codes.py``.

Adding an activation (say) means: a member here, the regenerated ``.pxd``,
and one branch in each backend's elementwise helper.
"""
from enum import IntEnum

__all__ = ["Act", "Loss", "Penalty", "Optimizer", "LayerKind", "Prog", "Cell", "Stop", "Status",
           "Run", "ENUMS", "NAMES", "by_name", "pxd_source"]


class Act(IntEnum):
    """Activation of a layer (``kinds[l]``); SOFTMAX only as the output, with LOGLOSS."""
    LINEAR = 0
    SIGMOID = 1
    RELU = 2
    TANH = 3
    SOFTMAX = 4


class Loss(IntEnum):
    """Data loss: binary cross-entropy, half squared error, or log-loss (softmax output)."""
    CROSS_ENTROPY = 0
    QUADRATIC = 1
    LOG_LOSS = 2


class Penalty(IntEnum):
    """Weight penalty (bias rows excluded): none, L2 (lam/2 w^2) or L1 (lam |w|)."""
    NONE = 0
    L2 = 1
    L1 = 2


class Optimizer(IntEnum):
    """Update rule of one step (see :func:`fastnet.reference.kernels.optimizer_step`)."""
    SGD = 0
    MOMENTUM = 1
    RMSPROP = 2
    ADAM = 3
    NESTEROV = 4


class LayerKind(IntEnum):
    """Operation of one row of a layer program (:mod:`fastnet.sequential`)."""
    DENSE = 0
    CONV2D = 1
    MAXPOOL2D = 2
    AVGPOOL2D = 3
    FLATTEN = 4
    ACTIVATION = 5
    DENSE_TIED = 6


class Prog(IntEnum):
    """Column of a layer program's row: what each int64 field holds (``WIDTH``: row length).

    Shapes are channels-last ``(H, W, C)`` per sample; a flat layer is ``(1, 1, n)``.
    ``POFF``: start of the layer's block in ``params`` (bias row first, as Dense's
    ``W = Theta.T``); ``TIED``: the block whose weights a DENSE_TIED layer uses transposed.
    """
    KIND = 0
    ACT = 1
    IN_H = 2
    IN_W = 3
    IN_C = 4
    OUT_H = 5
    OUT_W = 6
    OUT_C = 7
    KH = 8
    KW = 9
    STRIDE = 10
    PAD_H = 11
    PAD_W = 12
    POFF = 13
    PLEN = 14
    TIED = 15
    WIDTH = 16


class Cell(IntEnum):
    """Recurrent cell of an RNN layer: the plain (Elman) cell or the LSTM (gates i, f, o, g)."""
    RNN = 0
    LSTM = 1


class Stop(IntEnum):
    """Stopping rule of ``train_epochs``: none, the course's ``tol`` or scikit-learn's plateau."""
    NONE = 0
    TOL = 1
    PLATEAU = 2


class Status(IntEnum):
    """How ``train_epochs`` ended: every epoch ran, its stopping rule fired, or it diverged."""
    RAN = 0
    CONVERGED = 1
    DIVERGED = 2


class Run(IntEnum):
    """Entry of the float64 ``run`` array of ``train_epochs`` (read and written; ``WIDTH``: length).

    In: the divergence rule's ``START_COST``, ``BEST`` and ``WEIGHT_LIMIT``; the stopping
    rule's ``STOP`` (a :class:`Stop`), ``TOL``, ``PATIENCE`` and its memory ``STOP_BEST``
    (the plateau's best cost, or the course rule's previous cost, NaN for none) and
    ``STOP_COUNT``.  Out: those updated, ``STATUS`` (a :class:`Status`), ``EPOCHS`` run
    and, after a divergence, ``W_MAX`` (the largest weight of the diverged epoch).
    """
    START_COST = 0
    BEST = 1
    WEIGHT_LIMIT = 2
    STOP = 3
    TOL = 4
    PATIENCE = 5
    STOP_BEST = 6
    STOP_COUNT = 7
    STATUS = 8
    EPOCHS = 9
    W_MAX = 10
    WIDTH = 11


#: The enums, with the prefix of their members in the generated Cython file.
ENUMS = {"ACT": Act, "LOSS": Loss, "PEN": Penalty, "OPT": Optimizer, "LAYER": LayerKind,
         "PROG": Prog, "CELL": Cell, "STOP": Stop, "STATUS": Status, "RUN": Run}

#: The names the API accepts for each code (lower case); 'gd' is full-batch sgd.
NAMES = {
    Act: {"linear": Act.LINEAR, "identity": Act.LINEAR, "sigmoid": Act.SIGMOID,
          "logistic": Act.SIGMOID, "relu": Act.RELU, "tanh": Act.TANH,
          "softmax": Act.SOFTMAX},
    Loss: {"cross_entropy": Loss.CROSS_ENTROPY, "quadratic": Loss.QUADRATIC,
           "log_loss": Loss.LOG_LOSS},
    Penalty: {None: Penalty.NONE, "none": Penalty.NONE, "l2": Penalty.L2, "l1": Penalty.L1},
    Optimizer: {"gd": Optimizer.SGD, "sgd": Optimizer.SGD, "momentum": Optimizer.MOMENTUM,
                "rmsprop": Optimizer.RMSPROP, "adam": Optimizer.ADAM,
                "nesterov": Optimizer.NESTEROV},
    Cell: {"rnn": Cell.RNN, "lstm": Cell.LSTM},
}


def by_name(enum, name):
    """The member of ``enum`` that the API name ``name`` stands for (``KeyError`` if none)."""
    key = name.strip().lower() if isinstance(name, str) else name
    return NAMES[enum][key]


def pxd_source() -> str:
    """The text of ``src_cython/_codes.pxi`` (anonymous ``cdef enum`` blocks)."""
    lines = ["# Generated from fastnet/_codes.py by `python -m fastnet._codes`: do not edit.",
             "# tests/test_codes.py checks that this file matches it."]
    for prefix, enum in ENUMS.items():
        lines.append("")
        lines.append(f"# {enum.__name__}: {enum.__doc__.splitlines()[0]}")
        lines.append("cdef enum:")
        for member in enum:
            lines.append(f"    {prefix}_{member.name} = {int(member)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a developer's command
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "src_cython" / "_codes.pxi"
    path.write_text(pxd_source())
    print(f"wrote {path}")
