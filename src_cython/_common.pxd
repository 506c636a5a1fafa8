# Shared declarations for fastnet's Cython kernels.
from libc.math cimport exp, log, tanh, fabs, sqrt

ctypedef fused floating:
    float
    double

# Activation codes: the same numbers as fastnet._backend.ACTIVATION_CODES.
cdef enum:
    ACT_LINEAR = 0
    ACT_SIGMOID = 1
    ACT_RELU = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4


cdef inline double sigmoid_d(double z) noexcept nogil:
    """Numerically stable logistic function: no overflow for any finite z."""
    cdef double e
    if z >= 0:
        e = exp(-z)
        return 1.0 / (1.0 + e)
    e = exp(z)
    return e / (1.0 + e)
