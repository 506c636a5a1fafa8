# Generated from fastnet/_codes.py by `python -m fastnet._codes`: do not edit.
# tests/test_codes.py checks that this file matches it.

# Act: Activation of a layer (``kinds[l]``); SOFTMAX only as the output, with LOGLOSS.
cdef enum:
    ACT_LINEAR = 0
    ACT_SIGMOID = 1
    ACT_RELU = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4

# Loss: Data loss: binary cross-entropy, half squared error, or log-loss (softmax output).
cdef enum:
    LOSS_CROSS_ENTROPY = 0
    LOSS_QUADRATIC = 1
    LOSS_LOG_LOSS = 2

# Penalty: Weight penalty (bias rows excluded): none, L2 (lam/2 w^2) or L1 (lam |w|).
cdef enum:
    PEN_NONE = 0
    PEN_L2 = 1
    PEN_L1 = 2

# Optimizer: Update rule of one step (see :func:`fastnet.reference.kernels.optimizer_step`).
cdef enum:
    OPT_SGD = 0
    OPT_MOMENTUM = 1
    OPT_RMSPROP = 2
    OPT_ADAM = 3
    OPT_NESTEROV = 4

# LayerKind: Operation of one row of a layer program (:mod:`fastnet.sequential`).
cdef enum:
    LAYER_DENSE = 0
    LAYER_CONV2D = 1
    LAYER_MAXPOOL2D = 2
    LAYER_AVGPOOL2D = 3
    LAYER_FLATTEN = 4
    LAYER_ACTIVATION = 5
    LAYER_DENSE_TIED = 6

# Prog: Column of a layer program's row: what each int64 field holds (``WIDTH``: row length).
cdef enum:
    PROG_KIND = 0
    PROG_ACT = 1
    PROG_IN_H = 2
    PROG_IN_W = 3
    PROG_IN_C = 4
    PROG_OUT_H = 5
    PROG_OUT_W = 6
    PROG_OUT_C = 7
    PROG_KH = 8
    PROG_KW = 9
    PROG_STRIDE = 10
    PROG_PAD_H = 11
    PROG_PAD_W = 12
    PROG_POFF = 13
    PROG_PLEN = 14
    PROG_TIED = 15
    PROG_WIDTH = 16

# Cell: Recurrent cell of an RNN layer: the plain (Elman) cell or the LSTM (gates i, f, o, g).
cdef enum:
    CELL_RNN = 0
    CELL_LSTM = 1

# Stop: Stopping rule of ``train_epochs``: none, the course's ``tol`` or scikit-learn's plateau.
cdef enum:
    STOP_NONE = 0
    STOP_TOL = 1
    STOP_PLATEAU = 2

# Status: How ``train_epochs`` ended: every epoch ran, its stopping rule fired, or it diverged.
cdef enum:
    STATUS_RAN = 0
    STATUS_CONVERGED = 1
    STATUS_DIVERGED = 2

# Run: Entry of the float64 ``run`` array of ``train_epochs`` (read and written; ``WIDTH``: length).
cdef enum:
    RUN_START_COST = 0
    RUN_BEST = 1
    RUN_WEIGHT_LIMIT = 2
    RUN_STOP = 3
    RUN_TOL = 4
    RUN_PATIENCE = 5
    RUN_STOP_BEST = 6
    RUN_STOP_COUNT = 7
    RUN_STATUS = 8
    RUN_EPOCHS = 9
    RUN_W_MAX = 10
    RUN_WIDTH = 11
