/*
 * copy(dst, src): dst[...] = src for two buffers of the same shape (at most 4 dimensions) and
 * item size, with any strides (in bytes, negative ones too), in tiles.
 *
 * A raw chunk file holds its array x fastest; an operation's output (a torch tensor, C, X, Y, Z
 * in C order) has z, then y fastest. NumPy copies one into the other element by element along
 * the destination, reading the source with a stride of a row: 1-3 ns a byte (a 1 MB uint8 chunk
 * of a 2048-wide array takes ~2.5 ms, 70 times a plain copy). Here the two axes that are fastest
 * in the source and in the destination are copied in 8 x 8 tiles: both sides' cache lines are
 * used whole while they are in the cache, and a tile's 8 lines fit the cache sets that rows a
 * power of two apart fall into (64 x 64 tiles were 4 times slower): ~0.4-0.5 ms for that chunk.
 * The GIL is released while copying. dst and src must not overlap. Only the buffer protocol is
 * used (no NumPy headers); raw_chunks.py falls back to NumPy when this module is not built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define TILE 8

typedef struct {
    Py_ssize_t shape[4];
    Py_ssize_t sstr[4];
    Py_ssize_t dstr[4];
    Py_ssize_t itemsize;
} plan_t;

static Py_ssize_t absz(Py_ssize_t v) { return v < 0 ? -v : v; }

#define TILE_LOOP(T)                                                                          \
    for (Py_ssize_t a0 = 0; a0 < na; a0 += TILE) {                                            \
        Py_ssize_t a1 = a0 + TILE < na ? a0 + TILE : na;                                      \
        for (Py_ssize_t b0 = 0; b0 < nb; b0 += TILE) {                                        \
            Py_ssize_t b1 = b0 + TILE < nb ? b0 + TILE : nb;                                  \
            for (Py_ssize_t ib = b0; ib < b1; ib++) {                                         \
                const char *s = sp + ib * ssb + a0 * ssa;                                     \
                char *d = dp + ib * dsb + a0 * dsa;                                           \
                for (Py_ssize_t ia = a0; ia < a1; ia++) {                                     \
                    *(T *)d = *(const T *)s;                                                  \
                    s += ssa;                                                                 \
                    d += dsa;                                                                 \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

/* One plane: axis a (fastest in dst) and axis b (fastest in src), tiled. */
static void copy_plane(char *dp, const char *sp, Py_ssize_t na, Py_ssize_t nb, Py_ssize_t dsa,
                       Py_ssize_t dsb, Py_ssize_t ssa, Py_ssize_t ssb, Py_ssize_t itemsize) {
    switch (itemsize) {
    case 1: TILE_LOOP(uint8_t) break;
    case 2: TILE_LOOP(uint16_t) break;
    case 4: TILE_LOOP(uint32_t) break;
    case 8: TILE_LOOP(uint64_t) break;
    default:
        for (Py_ssize_t ib = 0; ib < nb; ib++)
            for (Py_ssize_t ia = 0; ia < na; ia++)
                memcpy(dp + ia * dsa + ib * dsb, sp + ia * ssa + ib * ssb, (size_t)itemsize);
    }
}

/* One line along axis a, the same axis fastest in both. */
static void copy_line(char *dp, const char *sp, Py_ssize_t n, Py_ssize_t ds, Py_ssize_t ss,
                      Py_ssize_t itemsize) {
    if (ds == itemsize && ss == itemsize) {
        memcpy(dp, sp, (size_t)(n * itemsize));
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        memcpy(dp + i * ds, sp + i * ss, (size_t)itemsize);
}

static void run(const plan_t *p, char *dp, const char *sp) {
    /* a: the axis fastest in dst, b: fastest in src (among axes longer than 1) */
    int a = -1, b = -1;
    for (int k = 0; k < 4; k++) {
        if (p->shape[k] < 2) continue;
        if (a < 0 || absz(p->dstr[k]) < absz(p->dstr[a])) a = k;
        if (b < 0 || absz(p->sstr[k]) < absz(p->sstr[b])) b = k;
    }
    if (a < 0) { /* one item */
        memcpy(dp, sp, (size_t)p->itemsize);
        return;
    }
    int rest[4], nrest = 0;
    for (int k = 0; k < 4; k++)
        if (k != a && (a == b || k != b)) rest[nrest++] = k;
    Py_ssize_t n[3] = {1, 1, 1}, dstep[3] = {0, 0, 0}, sstep[3] = {0, 0, 0};
    for (int r = 0; r < nrest; r++) {
        n[r] = p->shape[rest[r]];
        dstep[r] = p->dstr[rest[r]];
        sstep[r] = p->sstr[rest[r]];
    }
    for (Py_ssize_t i0 = 0; i0 < n[0]; i0++)
        for (Py_ssize_t i1 = 0; i1 < n[1]; i1++)
            for (Py_ssize_t i2 = 0; i2 < n[2]; i2++) {
                char *d = dp + i0 * dstep[0] + i1 * dstep[1] + i2 * dstep[2];
                const char *s = sp + i0 * sstep[0] + i1 * sstep[1] + i2 * sstep[2];
                if (a == b)
                    copy_line(d, s, p->shape[a], p->dstr[a], p->sstr[a], p->itemsize);
                else
                    copy_plane(d, s, p->shape[a], p->shape[b], p->dstr[a], p->dstr[b],
                               p->sstr[a], p->sstr[b], p->itemsize);
            }
}

static PyObject *py_copy(PyObject *self, PyObject *args) {
    PyObject *dst_obj, *src_obj;
    if (!PyArg_ParseTuple(args, "OO:copy", &dst_obj, &src_obj)) return NULL;
    Py_buffer dst, src;
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_STRIDES | PyBUF_WRITABLE) < 0) return NULL;
    if (PyObject_GetBuffer(src_obj, &src, PyBUF_STRIDES) < 0) {
        PyBuffer_Release(&dst);
        return NULL;
    }
    PyObject *result = NULL;
    if (dst.ndim != src.ndim || dst.ndim > 4 || dst.itemsize != src.itemsize) {
        PyErr_Format(PyExc_ValueError,
                     "copy: expected buffers of the same shape (at most 4 dimensions) and item "
                     "size, got %d and %d dimensions, items of %zd and %zd bytes",
                     dst.ndim, src.ndim, dst.itemsize, src.itemsize);
        goto done;
    }
    plan_t p;
    p.itemsize = dst.itemsize;
    for (int k = 0; k < 4; k++) {
        int inside = k < dst.ndim;
        if (inside && dst.shape[k] != src.shape[k]) {
            PyErr_Format(PyExc_ValueError, "copy: shapes differ along dimension %d (%zd, %zd)",
                         k, dst.shape[k], src.shape[k]);
            goto done;
        }
        p.shape[k] = inside ? dst.shape[k] : 1;
        p.dstr[k] = inside ? dst.strides[k] : 0;
        p.sstr[k] = inside ? src.strides[k] : 0;
    }
    for (int k = 0; k < 4; k++)
        if (p.shape[k] == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    run(&p, (char *)dst.buf, (const char *)src.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"copy", py_copy, METH_VARARGS, "copy(dst, src): dst[...] = src, tiled (any strides)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_chunk_copy", NULL, -1, methods};

PyMODINIT_FUNC PyInit__chunk_copy(void) { return PyModule_Create(&module); }
