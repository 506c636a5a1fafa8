# The plain-C loops of fastnet_loops.h (restrict-qualified, vectorised by gcc): one
# declaration for every module that uses them (mlp.pyx's online path, linear.pyx's GD).

cdef extern from "fastnet_loops.h" nogil:
    void fl_fwd4_f32(float *z, int64_t n, const float *w0, const float *w1, const float *w2,
                     const float *w3, float v0, float v1, float v2, float v3)
    void fl_fwd4_f64(double *z, int64_t n, const double *w0, const double *w1,
                     const double *w2, const double *w3, double v0, double v1, double v2,
                     double v3)
    void fl_fwd1_f32(float *z, int64_t n, const float *w0, float v0)
    void fl_fwd1_f64(double *z, int64_t n, const double *w0, double v0)
    void fl_sgd_fwd4_f32(float *z, const float *d, int64_t n, float lr, float *w0, float *w1,
                         float *w2, float *w3, float c0, float c1, float c2, float c3,
                         float v0, float v1, float v2, float v3)
    void fl_sgd_fwd4_f64(double *z, const double *d, int64_t n, double lr, double *w0,
                         double *w1, double *w2, double *w3, double c0, double c1, double c2,
                         double c3, double v0, double v1, double v2, double v3)
    void fl_sgd_fwd1_f32(float *z, const float *d, int64_t n, float lr, float *w0, float c0,
                         float v0)
    void fl_sgd_fwd1_f64(double *z, const double *d, int64_t n, double lr, double *w0,
                         double c0, double v0)
    void fl_dot4_f32(const float *d, int64_t n, const float *w0, const float *w1,
                     const float *w2, const float *w3, float *out)
    void fl_dot4_f64(const double *d, int64_t n, const double *w0, const double *w1,
                     const double *w2, const double *w3, double *out)
    float fl_dot1_f32(const float *d, int64_t n, const float *w0)
    double fl_dot1_f64(const double *d, int64_t n, const double *w0)
    void fl_dot_sgd4_f32(const float *d, int64_t n, float lr, float *w0, float *w1, float *w2,
                         float *w3, float c0, float c1, float c2, float c3, float *out)
    void fl_dot_sgd4_f64(const double *d, int64_t n, double lr, double *w0, double *w1,
                         double *w2, double *w3, double c0, double c1, double c2, double c3,
                         double *out)
    float fl_dot_sgd1_f32(const float *d, int64_t n, float lr, float *w0, float c0)
    double fl_dot_sgd1_f64(const double *d, int64_t n, double lr, double *w0, double c0)
