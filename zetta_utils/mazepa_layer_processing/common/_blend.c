/*
 * Fused loops for blending chunk outputs (see reduction.py, which falls back to NumPy when this
 * module is not built).
 *
 *   accumulate(acc, src, wx, wy, wz)   acc += src * wx[x] * wy[y] * wz[z]
 *   store(dst, acc, round, clear)      dst = rint(acc) (or acc) cast to dst's type; acc = 0
 *   apply(out, data, buffers, plan, w) all the pieces of one chunk output: copies into out,
 *                                      weighted sums into band buffers
 *   store_all(out, buffers, starts, round)
 *                                      store (and clear) each band buffer into out at its start
 *
 * Arrays are 4D (C, X, Y, Z) buffers with any strides (in bytes); acc is float32 or float64,
 * src and dst any of the integer, float or bool types, each weight None or a 1D contiguous
 * buffer of acc's type. NumPy does the same in three to five passes with temporaries; one fused
 * pass over x-fastest data is several times faster. Only the buffer protocol is used, so the
 * module builds without NumPy's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef enum { T_BOOL, T_I8, T_U8, T_I16, T_U16, T_I32, T_U32, T_I64, T_U64, T_F32, T_F64, T_BAD } kind_t;

static kind_t kind_of(const Py_buffer *b) {
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    else if (*f == '>' || *f == '!') return T_BAD;
    if (f[0] == '\0' || f[1] != '\0') return T_BAD;
    switch (f[0]) {
    case '?': return T_BOOL;
    case 'b': return T_I8;
    case 'B': return T_U8;
    case 'h': return b->itemsize == 2 ? T_I16 : T_BAD;
    case 'H': return b->itemsize == 2 ? T_U16 : T_BAD;
    case 'i': return b->itemsize == 4 ? T_I32 : T_BAD;
    case 'I': return b->itemsize == 4 ? T_U32 : T_BAD;
    case 'l': case 'q': return b->itemsize == 8 ? T_I64 : (b->itemsize == 4 ? T_I32 : T_BAD);
    case 'L': case 'Q': return b->itemsize == 8 ? T_U64 : (b->itemsize == 4 ? T_U32 : T_BAD);
    case 'f': return b->itemsize == 4 ? T_F32 : T_BAD;
    case 'd': return b->itemsize == 8 ? T_F64 : T_BAD;
    default: return T_BAD;
    }
}

/* The 4D geometry shared by a pair of arrays. */
typedef struct {
    Py_ssize_t n[4];
    Py_ssize_t a[4]; /* strides of the first array, bytes */
    Py_ssize_t b[4]; /* strides of the second */
} geom_t;

static int get_geom(const Py_buffer *x, const Py_buffer *y, geom_t *g) {
    if (x->ndim != 4 || y->ndim != 4) {
        PyErr_SetString(PyExc_ValueError, "_blend: arrays must be 4D (C, X, Y, Z)");
        return -1;
    }
    for (int d = 0; d < 4; d++) {
        if (x->shape[d] != y->shape[d]) {
            PyErr_SetString(PyExc_ValueError, "_blend: arrays must have the same shape");
            return -1;
        }
        g->n[d] = x->shape[d];
        g->a[d] = x->strides[d];
        g->b[d] = y->strides[d];
    }
    return 0;
}

/* The row loops below are built twice on x86-64 with GCC: for AVX2 (converting 8 integers to
 * floats per instruction, where the baseline SSE2 needs several) and for any x86-64; the loader
 * picks the one the CPU runs (an ifunc). The same IEEE operations in the same order either way
 * (no contraction, no reassociation): the results are identical. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* acc (type A) += src (type S) * w over one x row, w = (wx[x] * wy) * wz: the weight and the
 * sum rounded step by step in this order, as the original zetta_utils computes them (its weight
 * template is multiplied by the x, then the y, then the z ramp; then acc + value * weight). Where
 * wz is 1 (no z ramp) the last product is exact and skipped; without wx, w is wy * wz. The build
 * turns off floating-point contraction (setup.py): a fused multiply-add would round once. */
#define ACC_ROW(A, S)                                                                          \
    CLONES static void acc_row_##A##_##S(char *acc, Py_ssize_t sa, const char *src, Py_ssize_t ss,     \
                                  const A *wx, A wy, A wz, Py_ssize_t n) {                      \
        A wyz = wy * wz;                                                                        \
        if (sa == (Py_ssize_t)sizeof(A) && ss == (Py_ssize_t)sizeof(S)) {                       \
            A *restrict o = (A *)acc;                                                           \
            const S *restrict s = (const S *)src;                                               \
            if (wx && wz == (A)1) {                                                             \
                for (Py_ssize_t i = 0; i < n; i++) o[i] += (A)s[i] * (wx[i] * wy);              \
            } else if (wx) {                                                                    \
                for (Py_ssize_t i = 0; i < n; i++) o[i] += (A)s[i] * ((wx[i] * wy) * wz);       \
            } else {                                                                            \
                for (Py_ssize_t i = 0; i < n; i++) o[i] += (A)s[i] * wyz;                       \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                                    \
            A w = wx ? (wx[i] * wy) * wz : wyz;                                                 \
            *(A *)(acc + i * sa) += (A)(*(const S *)(src + i * ss)) * w;                        \
        }                                                                                       \
    }

/* dst (type D) = rint(acc) (or acc) over one x row; acc set to 0 when clear. */
#define STORE_ROW(A, D)                                                                        \
    CLONES static void store_row_##A##_##D(char *dst, Py_ssize_t sd, char *acc, Py_ssize_t sa,         \
                                    int round, int clear, Py_ssize_t n) {                       \
        if (sd == (Py_ssize_t)sizeof(D) && sa == (Py_ssize_t)sizeof(A)) {                       \
            D *restrict o = (D *)dst;                                                           \
            A *restrict s = (A *)acc;                                                           \
            if (round) {                                                                        \
                for (Py_ssize_t i = 0; i < n; i++) o[i] = ROUND_##D(A, s[i]);                   \
            } else {                                                                            \
                for (Py_ssize_t i = 0; i < n; i++) o[i] = (D)s[i];                              \
            }                                                                                   \
            if (clear) memset(s, 0, (size_t)n * sizeof(A));                                     \
            return;                                                                             \
        }                                                                                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                                    \
            A *p = (A *)(acc + i * sa);                                                         \
            *(D *)(dst + i * sd) = round ? ROUND_##D(A, *p) : (D)*p;                            \
            if (clear) *p = 0;                                                                  \
        }                                                                                       \
    }

/* Round half to even like np.rint (the default rounding mode), in plain arithmetic so that loops
 * vectorize without SSE4.1: adding and subtracting 2^23 (2^52) rounds a smaller magnitude to an
 * integer; larger ones already are. */
static inline float rint_f(float x) {
    float a = fabsf(x);
    float r = copysignf((a + 8388608.0f) - 8388608.0f, x);
    return a < 8388608.0f ? r : x;
}
static inline double rint_d(double x) {
    double a = fabs(x);
    double r = copysign((a + 4503599627370496.0) - 4503599627370496.0, x);
    return a < 4503599627370496.0 ? r : x;
}
#define RINT_float rint_f
#define RINT_double rint_d
/* Rounding to types of up to 32 bits through a 32-bit integer: one vector instruction (with
 * -fno-math-errno), in the current rounding mode (half to even). */
#if defined(__GNUC__) && !defined(__clang__)
#define IRINT_float(x) __builtin_irintf(x)
#define IRINT_double(x) __builtin_irint(x)
#else
#define IRINT_float(x) ((int32_t)lrintf(x))
#define IRINT_double(x) ((int32_t)lrint(x))
#endif
#define ROUND_b1(A, x) ((b1)IRINT_##A(x))
#define ROUND_i8(A, x) ((i8)IRINT_##A(x))
#define ROUND_u8(A, x) ((u8)IRINT_##A(x))
#define ROUND_i16(A, x) ((i16)IRINT_##A(x))
#define ROUND_u16(A, x) ((u16)IRINT_##A(x))
#define ROUND_i32(A, x) ((i32)IRINT_##A(x))
#define ROUND_u32(A, x) ((u32)RINT_##A(x))
#define ROUND_i64(A, x) ((i64)RINT_##A(x))
#define ROUND_u64(A, x) ((u64)RINT_##A(x))
#define ROUND_float(A, x) ((float)RINT_##A(x))
#define ROUND_double(A, x) ((double)RINT_##A(x))

typedef unsigned char u8;
typedef signed char i8;
typedef int16_t i16;
typedef uint16_t u16;
typedef int32_t i32;
typedef uint32_t u32;
typedef int64_t i64;
typedef uint64_t u64;
typedef _Bool b1;

#define FOR_TYPES(M, A) M(A, b1) M(A, i8) M(A, u8) M(A, i16) M(A, u16) M(A, i32) M(A, u32) M(A, i64) M(A, u64) M(A, float) M(A, double)
FOR_TYPES(ACC_ROW, float)
FOR_TYPES(ACC_ROW, double)
FOR_TYPES(STORE_ROW, float)
FOR_TYPES(STORE_ROW, double)

/* Rows of a band are short (its width) and far apart (the buffer's row length), which the
 * hardware prefetcher does not follow: ask for the row a few ahead while working on this one. */
#define PREFETCH_ROWS 4
static inline void prefetch_row(const char *p, Py_ssize_t bytes, int write) {
    if (bytes < 0 || bytes > 1024) return; /* long rows stream well by themselves */
    for (Py_ssize_t o = 0; o < bytes; o += 64) {
        if (write) __builtin_prefetch(p + o, 1);
        else __builtin_prefetch(p + o, 0);
    }
}


#define TABLE(P, A) {(void *)P##_##A##_b1, (void *)P##_##A##_i8, (void *)P##_##A##_u8, (void *)P##_##A##_i16, \
    (void *)P##_##A##_u16, (void *)P##_##A##_i32, (void *)P##_##A##_u32, (void *)P##_##A##_i64,                \
    (void *)P##_##A##_u64, (void *)P##_##A##_float, (void *)P##_##A##_double}

static void *const ACC_F32[T_BAD] = TABLE(acc_row, float);
static void *const ACC_F64[T_BAD] = TABLE(acc_row, double);
static void *const STORE_F32[T_BAD] = TABLE(store_row, float);
static void *const STORE_F64[T_BAD] = TABLE(store_row, double);

typedef void (*acc_row_f32_t)(char *, Py_ssize_t, const char *, Py_ssize_t, const float *, float, float, Py_ssize_t);
typedef void (*acc_row_f64_t)(char *, Py_ssize_t, const char *, Py_ssize_t, const double *, double, double, Py_ssize_t);
typedef void (*store_row_t)(char *, Py_ssize_t, char *, Py_ssize_t, int, int, Py_ssize_t);

/* A weight vector: NULL for None, else a contiguous buffer of n values of the acc type. */
static int get_weight(PyObject *obj, Py_buffer *view, kind_t acc, Py_ssize_t n, const char *name) {
    view->obj = NULL;
    if (obj == Py_None) return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (kind_of(view) != acc || view->len != n * view->itemsize) {
        PyErr_Format(PyExc_ValueError, "_blend: weight %s must be %zd values of the accumulator's type", name, n);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

/* One channel: acc (float32 if f32, else float64) += src (kind sk) * wx[x] * wy[y] * wz[z] over
 * n[0] x n[1] x n[2] voxels; as/ss are the x, y, z strides in bytes, a NULL weight means ones. */
static void acc_box(char *acc, const Py_ssize_t *as, const char *src, const Py_ssize_t *ss, kind_t sk, int f32,
                    const void *wx, const void *wy, const void *wz, const Py_ssize_t *n) {
    for (Py_ssize_t z = 0; z < n[2]; z++)
        for (Py_ssize_t y = 0; y < n[1]; y++) {
            char *pa = acc + y * as[1] + z * as[2];
            const char *ps = src + y * ss[1] + z * ss[2];
            if (y + PREFETCH_ROWS < n[1]) prefetch_row(pa + PREFETCH_ROWS * as[1], n[0] * as[0], 1);
            if (f32) {
                float vy = wy ? ((const float *)wy)[y] : 1.0f, vz = wz ? ((const float *)wz)[z] : 1.0f;
                ((acc_row_f32_t)ACC_F32[sk])(pa, as[0], ps, ss[0], (const float *)wx, vy, vz, n[0]);
            } else {
                double vy = wy ? ((const double *)wy)[y] : 1.0, vz = wz ? ((const double *)wz)[z] : 1.0;
                ((acc_row_f64_t)ACC_F64[sk])(pa, as[0], ps, ss[0], (const double *)wx, vy, vz, n[0]);
            }
        }
}

static PyObject *accumulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *acc_obj, *src_obj, *w_obj[3];
    if (!PyArg_ParseTuple(args, "OOOOO", &acc_obj, &src_obj, &w_obj[0], &w_obj[1], &w_obj[2])) return NULL;
    Py_buffer acc, src, w[3];
    w[0].obj = w[1].obj = w[2].obj = NULL;
    if (PyObject_GetBuffer(acc_obj, &acc, PyBUF_RECORDS) < 0) return NULL;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_RECORDS_RO) < 0) {
        PyBuffer_Release(&acc);
        return NULL;
    }
    PyObject *result = NULL;
    geom_t g;
    kind_t ak = kind_of(&acc), sk = kind_of(&src);
    if (get_geom(&acc, &src, &g) < 0) goto done;
    if ((ak != T_F32 && ak != T_F64) || sk == T_BAD) {
        PyErr_SetString(PyExc_TypeError, "_blend.accumulate: unsupported types");
        goto done;
    }
    for (int d = 0; d < 3; d++)
        if (get_weight(w_obj[d], &w[d], ak, g.n[d + 1], d == 0 ? "x" : (d == 1 ? "y" : "z")) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < g.n[0]; c++)
        acc_box((char *)acc.buf + c * g.a[0], g.a + 1, (const char *)src.buf + c * g.b[0], g.b + 1, sk, ak == T_F32,
                w[0].obj ? w[0].buf : NULL, w[1].obj ? w[1].buf : NULL, w[2].obj ? w[2].buf : NULL, g.n + 1);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    for (int d = 0; d < 3; d++)
        if (w[d].obj) PyBuffer_Release(&w[d]);
    PyBuffer_Release(&src);
    PyBuffer_Release(&acc);
    return result;
}

static PyObject *store(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dst_obj, *acc_obj;
    int round, clear;
    if (!PyArg_ParseTuple(args, "OOpp", &dst_obj, &acc_obj, &round, &clear)) return NULL;
    Py_buffer dst, acc;
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_RECORDS) < 0) return NULL;
    if (PyObject_GetBuffer(acc_obj, &acc, PyBUF_RECORDS) < 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    PyObject *result = NULL;
    geom_t g;
    kind_t dk = kind_of(&dst), ak = kind_of(&acc);
    if (get_geom(&dst, &acc, &g) < 0) goto done;
    if ((ak != T_F32 && ak != T_F64) || dk == T_BAD) {
        PyErr_SetString(PyExc_TypeError, "_blend.store: unsupported types");
        goto done;
    }
    store_row_t row = (store_row_t)(ak == T_F32 ? STORE_F32[dk] : STORE_F64[dk]);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < g.n[0]; c++)
        for (Py_ssize_t z = 0; z < g.n[3]; z++)
            for (Py_ssize_t y = 0; y < g.n[2]; y++) {
                char *pd = (char *)dst.buf + c * g.a[0] + y * g.a[2] + z * g.a[3];
                char *pa = (char *)acc.buf + c * g.b[0] + y * g.b[2] + z * g.b[3];
                if (y + PREFETCH_ROWS < g.n[2]) {
                    prefetch_row(pa + PREFETCH_ROWS * g.b[2], g.n[1] * g.b[1], 1);
                    prefetch_row(pd + PREFETCH_ROWS * g.a[2], g.n[1] * g.a[1], 1);
                }
                row(pd, g.a[1], pa, g.b[1], round, clear, g.n[1]);
            }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&acc);
    PyBuffer_Release(&dst);
    return result;
}

/* ---- a chunk's pieces in one call ------------------------------------------------------------
 * apply(out, data, buffers, plan, weights, add_zero=False)
 * A plan is a C-contiguous int64 array of rows (region, t[3], d[3], n[3], w[3]): the box of n
 * voxels at d in data goes to t in the output (region -1: copied, data of the output's type, as
 * value + 0 for floats with add_zero, which turns -0.0 into 0.0 like a sum from zero) or
 * in band buffer ``region`` (summed with weights: w[k] the offset of the dim-k vector in the
 * weights array, -1 for ones). Every box is checked against its arrays before anything is done. */

typedef struct {
    Py_buffer *views; /* one per buffer, acquired on first use */
    Py_ssize_t count;
    PyObject *seq;
} buffers_t;

static int buffers_open(buffers_t *b, PyObject *seq) {
    b->seq = PySequence_Fast(seq, "_blend: buffers must be a sequence");
    if (!b->seq) return -1;
    b->count = PySequence_Fast_GET_SIZE(b->seq);
    b->views = PyMem_Calloc((size_t)(b->count ? b->count : 1), sizeof(Py_buffer));
    if (!b->views) {
        Py_DECREF(b->seq);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static Py_buffer *buffers_get(buffers_t *b, Py_ssize_t i) {
    if (i < 0 || i >= b->count) {
        PyErr_SetString(PyExc_ValueError, "_blend: plan names a buffer that is not given");
        return NULL;
    }
    Py_buffer *v = &b->views[i];
    if (!v->obj) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(b->seq, i), v, PyBUF_RECORDS) < 0) {
            v->obj = NULL;
            return NULL;
        }
        kind_t k = kind_of(v);
        if (v->ndim != 4 || (k != T_F32 && k != T_F64)) {
            PyBuffer_Release(v);
            v->obj = NULL;
            PyErr_SetString(PyExc_TypeError, "_blend: buffers must be 4D float32 or float64 arrays");
            return NULL;
        }
    }
    return v;
}

static void buffers_close(buffers_t *b) {
    for (Py_ssize_t i = 0; i < b->count; i++)
        if (b->views[i].obj) PyBuffer_Release(&b->views[i]);
    PyMem_Free(b->views);
    Py_DECREF(b->seq);
}

/* Whether the box (start s, size n) lies inside a 4D array's spatial shape. */
static int box_inside(const Py_buffer *a, const int64_t *s, const int64_t *n) {
    for (int d = 0; d < 3; d++)
        if (s[d] < 0 || n[d] < 0 || s[d] + n[d] > a->shape[d + 1]) return 0;
    return 1;
}

static int get_plan(PyObject *obj, Py_buffer *view, Py_ssize_t width, Py_ssize_t *rows) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    kind_t k = kind_of(view);
    if (k != T_I64 || view->len % (width * 8) != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "_blend: a plan must be int64 rows of %zd values", width);
        return -1;
    }
    *rows = view->len / (width * 8);
    return 0;
}

static void add_zero_f32(float *restrict o, const float *restrict d, int64_t n) {
    for (int64_t x = 0; x < n; x++) o[x] = d[x] + 0.0f;
}

static void add_zero_f64(double *restrict o, const double *restrict d, int64_t n) {
    for (int64_t x = 0; x < n; x++) o[x] = d[x] + 0.0;
}

static PyObject *apply(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *out_obj, *data_obj, *buffers_obj, *plan_obj, *weights_obj;
    int add_zero = 0;
    if (!PyArg_ParseTuple(args, "OOOOO|p", &out_obj, &data_obj, &buffers_obj, &plan_obj, &weights_obj, &add_zero)) return NULL;
    Py_buffer out, data, plan, weights;
    weights.obj = NULL;
    buffers_t bufs;
    Py_ssize_t rows = 0;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_RECORDS) < 0) return NULL;
    if (PyObject_GetBuffer(data_obj, &data, PyBUF_RECORDS_RO) < 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    if (get_plan(plan_obj, &plan, 13, &rows) < 0) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    if (buffers_open(&bufs, buffers_obj) < 0) {
        PyBuffer_Release(&plan);
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    PyObject *result = NULL;
    kind_t ok = kind_of(&out), dk = kind_of(&data), wk = T_BAD;
    Py_ssize_t nw = 0;
    if (out.ndim != 4 || data.ndim != 4 || out.shape[0] != data.shape[0]) {
        PyErr_SetString(PyExc_ValueError, "_blend.apply: out and data must be 4D with the same channels");
        goto done;
    }
    if (ok == T_BAD || dk != ok) {
        PyErr_SetString(PyExc_TypeError, "_blend.apply: data must have the output's type");
        goto done;
    }
    if (weights_obj != Py_None) {
        if (PyObject_GetBuffer(weights_obj, &weights, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
        wk = kind_of(&weights);
        nw = weights.len / (weights.itemsize ? weights.itemsize : 1);
    }
    const int64_t *p = (const int64_t *)plan.buf;
    /* check everything first */
    for (Py_ssize_t r = 0; r < rows; r++) {
        const int64_t *row = p + 13 * r;
        Py_buffer *target = &out;
        if (row[0] >= 0) {
            target = buffers_get(&bufs, (Py_ssize_t)row[0]);
            if (!target) goto done;
            if (target->shape[0] != out.shape[0]) {
                PyErr_SetString(PyExc_ValueError, "_blend.apply: a buffer has other channels than out");
                goto done;
            }
            for (int d = 0; d < 3; d++) {
                if (row[10 + d] < 0) continue;
                if (!weights.obj || wk != kind_of(target) || row[10 + d] + row[7 + d] > nw) {
                    PyErr_SetString(PyExc_ValueError, "_blend.apply: weights missing, short or of another type than the buffer");
                    goto done;
                }
            }
        }
        if (!box_inside(target, row + 1, row + 7) || !box_inside(&data, row + 4, row + 7)) {
            PyErr_SetString(PyExc_ValueError, "_blend.apply: a piece lies outside its arrays");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        const int64_t *row = p + 13 * r;
        const int64_t *t = row + 1, *s = row + 4, *n = row + 7, *w = row + 10;
        for (Py_ssize_t c = 0; c < out.shape[0]; c++) {
            const char *ds = (const char *)data.buf + c * data.strides[0] + s[0] * data.strides[1] + s[1] * data.strides[2] + s[2] * data.strides[3];
            if (row[0] < 0) {
                char *os = (char *)out.buf + c * out.strides[0] + t[0] * out.strides[1] + t[1] * out.strides[2] + t[2] * out.strides[3];
                int contiguous = out.strides[1] == out.itemsize && data.strides[1] == data.itemsize;
                for (int64_t z = 0; z < n[2]; z++)
                    for (int64_t y = 0; y < n[1]; y++) {
                        char *po = os + y * out.strides[2] + z * out.strides[3];
                        const char *pd = ds + y * data.strides[2] + z * data.strides[3];
                        if (add_zero && ok == T_F32 && contiguous) {
                            add_zero_f32((float *)po, (const float *)pd, n[0]);
                        } else if (add_zero && ok == T_F32) {
                            for (int64_t x = 0; x < n[0]; x++)
                                *(float *)(po + x * out.strides[1]) = *(const float *)(pd + x * data.strides[1]) + 0.0f;
                        } else if (add_zero && ok == T_F64 && contiguous) {
                            add_zero_f64((double *)po, (const double *)pd, n[0]);
                        } else if (add_zero && ok == T_F64) {
                            for (int64_t x = 0; x < n[0]; x++)
                                *(double *)(po + x * out.strides[1]) = *(const double *)(pd + x * data.strides[1]) + 0.0;
                        } else if (contiguous) {
                            memcpy(po, pd, (size_t)(n[0] * out.itemsize));
                        } else {
                            for (int64_t x = 0; x < n[0]; x++)
                                memcpy(po + x * out.strides[1], pd + x * data.strides[1], (size_t)out.itemsize);
                        }
                    }
                continue;
            }
            Py_buffer *acc = &bufs.views[row[0]];
            char *as = (char *)acc->buf + c * acc->strides[0] + t[0] * acc->strides[1] + t[1] * acc->strides[2] + t[2] * acc->strides[3];
            size_t wsize = kind_of(acc) == T_F32 ? sizeof(float) : sizeof(double);
            const char *wv = (const char *)weights.buf;
            Py_ssize_t box[3] = {(Py_ssize_t)n[0], (Py_ssize_t)n[1], (Py_ssize_t)n[2]};
            acc_box(as, acc->strides + 1, ds, data.strides + 1, dk, kind_of(acc) == T_F32, w[0] >= 0 ? wv + w[0] * wsize : NULL,
                    w[1] >= 0 ? wv + w[1] * wsize : NULL, w[2] >= 0 ? wv + w[2] * wsize : NULL, box);
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    if (weights.obj) PyBuffer_Release(&weights);
    buffers_close(&bufs);
    PyBuffer_Release(&plan);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return result;
}

/* ---- all band buffers of an output in one call ------------------------------------------------
 * starts: C-contiguous int64 (len(buffers), 3): where buffer i's box starts in out. Each buffer is
 * stored like store(out[box], buffer, round, clear=1). Every box is checked first. */
static PyObject *store_all(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *out_obj, *buffers_obj, *starts_obj;
    int round;
    if (!PyArg_ParseTuple(args, "OOOp", &out_obj, &buffers_obj, &starts_obj, &round)) return NULL;
    Py_buffer out, starts;
    buffers_t bufs;
    Py_ssize_t rows = 0;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_RECORDS) < 0) return NULL;
    if (get_plan(starts_obj, &starts, 3, &rows) < 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    if (buffers_open(&bufs, buffers_obj) < 0) {
        PyBuffer_Release(&starts);
        PyBuffer_Release(&out);
        return NULL;
    }
    PyObject *result = NULL;
    kind_t ok = kind_of(&out);
    const int64_t *t = (const int64_t *)starts.buf;
    if (out.ndim != 4 || ok == T_BAD || rows != bufs.count) {
        PyErr_SetString(PyExc_ValueError, "_blend.store_all: out must be 4D, with one start per buffer");
        goto done;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_buffer *acc = buffers_get(&bufs, r);
        if (!acc) goto done;
        int64_t n[3] = {acc->shape[1], acc->shape[2], acc->shape[3]};
        if (acc->shape[0] != out.shape[0] || !box_inside(&out, t + 3 * r, n)) {
            PyErr_SetString(PyExc_ValueError, "_blend.store_all: a buffer lies outside out");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_buffer *acc = &bufs.views[r];
        const int64_t *s = t + 3 * r;
        store_row_t row = (store_row_t)(kind_of(acc) == T_F32 ? STORE_F32[ok] : STORE_F64[ok]);
        for (Py_ssize_t c = 0; c < out.shape[0]; c++)
            for (Py_ssize_t z = 0; z < acc->shape[3]; z++)
                for (Py_ssize_t y = 0; y < acc->shape[2]; y++) {
                    char *pd = (char *)out.buf + c * out.strides[0] + s[0] * out.strides[1] + (s[1] + y) * out.strides[2] + (s[2] + z) * out.strides[3];
                    char *pa = (char *)acc->buf + c * acc->strides[0] + y * acc->strides[2] + z * acc->strides[3];
                    row(pd, out.strides[1], pa, acc->strides[1], round, 1, acc->shape[1]);
                }
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    buffers_close(&bufs);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&out);
    return result;
}


/* combine(dst, subs, weights, f64, round): dst = rint(sum_i subs[i] * w_i) (or the sum, cast)
 * over one cell of a reduction, each voxel summed from zero in the order of subs, in a row
 * buffer of the accumulator's type (float64 if f64, else float32): the operations of
 * accumulate() into a zeroed array followed by store(), voxel for voxel, without that array
 * (its allocation, zeroing and two more passes over it). weights[i]: None (ones) or
 * (wx, wy, wz), each None or contiguous values of the accumulator's type. */
static PyObject *combine(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dst_obj, *subs_obj, *weights_obj;
    int f64, round;
    if (!PyArg_ParseTuple(args, "OOOpp", &dst_obj, &subs_obj, &weights_obj, &f64, &round)) return NULL;
    PyObject *subs = PySequence_Fast(subs_obj, "_blend.combine: subs must be a sequence");
    if (subs == NULL) return NULL;
    PyObject *weights = PySequence_Fast(weights_obj, "_blend.combine: weights must be a sequence");
    if (weights == NULL) {
        Py_DECREF(subs);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(subs), opened = 0;
    Py_buffer dst;
    dst.obj = NULL;
    Py_buffer *sv = NULL;
    Py_buffer(*wv)[3] = NULL;
    Py_ssize_t(*ss)[4] = NULL;
    kind_t *sk = NULL;
    char *row = NULL;
    kind_t ak = f64 ? T_F64 : T_F32;
    if (count < 1 || PySequence_Fast_GET_SIZE(weights) != count) {
        PyErr_SetString(PyExc_ValueError, "_blend.combine: expected as many weights as pieces, at least one");
        goto done;
    }
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_RECORDS) < 0) {
        dst.obj = NULL;
        goto done;
    }
    kind_t dk = kind_of(&dst);
    sv = (Py_buffer *)PyMem_Calloc((size_t)count, sizeof(Py_buffer));
    wv = PyMem_Calloc((size_t)count, sizeof(*wv));
    ss = PyMem_Calloc((size_t)count, sizeof(*ss));
    sk = (kind_t *)PyMem_Calloc((size_t)count, sizeof(kind_t));
    if (sv == NULL || wv == NULL || ss == NULL || sk == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (dk == T_BAD || dst.ndim != 4) {
        PyErr_SetString(PyExc_TypeError, "_blend.combine: unsupported destination");
        goto done;
    }
    geom_t g;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(subs, i), &sv[i], PyBUF_RECORDS_RO) < 0) goto done;
        opened = i + 1;
        wv[i][0].obj = wv[i][1].obj = wv[i][2].obj = NULL;
        sk[i] = kind_of(&sv[i]);
        if (sk[i] == T_BAD) {
            PyErr_SetString(PyExc_TypeError, "_blend.combine: unsupported piece type");
            goto done;
        }
        if (get_geom(&dst, &sv[i], &g) < 0) goto done;
        for (int d = 0; d < 4; d++) ss[i][d] = g.b[d];
        PyObject *w = PySequence_Fast_GET_ITEM(weights, i);
        if (w == Py_None) continue;
        PyObject *w3 = PySequence_Fast(w, "_blend.combine: a weight must be None or (wx, wy, wz)");
        if (w3 == NULL) goto done;
        if (PySequence_Fast_GET_SIZE(w3) != 3) {
            Py_DECREF(w3);
            PyErr_SetString(PyExc_ValueError, "_blend.combine: a weight must be None or (wx, wy, wz)");
            goto done;
        }
        for (int d = 0; d < 3; d++)
            if (get_weight(PySequence_Fast_GET_ITEM(w3, d), &wv[i][d], ak, g.n[d + 1],
                           d == 0 ? "x" : (d == 1 ? "y" : "z")) < 0) {
                Py_DECREF(w3);
                goto done;
            }
        Py_DECREF(w3);
    }
    Py_ssize_t nx = dst.shape[1], asz = f64 ? 8 : 4;
    row = (char *)PyMem_Malloc((size_t)(nx > 0 ? nx : 1) * (size_t)asz);
    if (row == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    store_row_t store_row = (store_row_t)(f64 ? STORE_F64[dk] : STORE_F32[dk]);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < dst.shape[0]; c++)
        for (Py_ssize_t z = 0; z < dst.shape[3]; z++)
            for (Py_ssize_t y = 0; y < dst.shape[2]; y++) {
                memset(row, 0, (size_t)(nx * asz));
                for (Py_ssize_t i = 0; i < count; i++) {
                    const char *ps = (const char *)sv[i].buf + c * ss[i][0] + y * ss[i][2] + z * ss[i][3];
                    const void *wx = wv[i][0].obj ? wv[i][0].buf : NULL;
                    const void *wy = wv[i][1].obj ? wv[i][1].buf : NULL;
                    const void *wz = wv[i][2].obj ? wv[i][2].buf : NULL;
                    if (f64) {
                        double vy = wy ? ((const double *)wy)[y] : 1.0, vz = wz ? ((const double *)wz)[z] : 1.0;
                        ((acc_row_f64_t)ACC_F64[sk[i]])(row, asz, ps, ss[i][1], (const double *)wx, vy, vz, nx);
                    } else {
                        float vy = wy ? ((const float *)wy)[y] : 1.0f, vz = wz ? ((const float *)wz)[z] : 1.0f;
                        ((acc_row_f32_t)ACC_F32[sk[i]])(row, asz, ps, ss[i][1], (const float *)wx, vy, vz, nx);
                    }
                }
                char *pd = (char *)dst.buf + c * dst.strides[0] + y * dst.strides[2] + z * dst.strides[3];
                store_row(pd, dst.strides[1], row, asz, round, 0, nx);
            }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(row);
    for (Py_ssize_t i = 0; i < opened; i++) {
        for (int d = 0; d < 3; d++)
            if (wv[i][d].obj) PyBuffer_Release(&wv[i][d]);
        PyBuffer_Release(&sv[i]);
    }
    PyMem_Free(sv);
    PyMem_Free(wv);
    PyMem_Free(ss);
    PyMem_Free(sk);
    if (dst.obj) PyBuffer_Release(&dst);
    Py_DECREF(weights);
    Py_DECREF(subs);
    return result;
}

static PyMethodDef methods[] = {
    {"apply", apply, METH_VARARGS, "apply(out, data, buffers, plan, weights): copy or sum a chunk's pieces (see the comment above it)"},
    {"accumulate", accumulate, METH_VARARGS, "accumulate(acc, src, wx, wy, wz): acc += src * wx[x] * wy[y] * wz[z]"},
    {"store", store, METH_VARARGS, "store(dst, acc, round, clear): dst = rint(acc) or acc, cast; acc = 0 if clear"},
    {"combine", combine, METH_VARARGS, "combine(dst, subs, weights, f64, round): dst = rint(sum of subs[i] * weights[i]) in one pass"},
    {"store_all", store_all, METH_VARARGS, "store_all(out, buffers, starts, round): store and clear each buffer into out at its start"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_blend", .m_doc = "Fused blending loops.", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__blend(void) { return PyModule_Create(&module); }
