/* blpopq._kernel: the proof-of-work nonce search in C (optional; blpopq.pow is the reference).
 *
 * H(prev, n) = SHA-256(prev || decimal(n)) with prev 64 ASCII bytes: exactly one SHA-256
 * block, so its state (the "midstate") is computed once per search, and every attempt costs
 * exactly ONE compression of a second block holding the nonce digits and the padding
 * (20 digits + 0x80 + the 8-byte length always fit in 64 bytes).  The digits live in that
 * block and are incremented in place; the padding and length are rewritten only when the
 * digit count grows.  The difficulty is tested on the state words, before any byte output.
 *
 * Two code paths, chosen at run time: the x86 SHA extensions (compiled with the target
 * attribute and used only when CPUID says the CPU has them, so one binary runs everywhere)
 * and portable C.  The SHA-NI path hashes several independent nonces per loop, because one
 * stream mostly waits on sha256rnds2's latency.  The GIL is released during the search.
 *
 * Nonces are uint64: the Python caller (blpopq.kernels) sends ranges beyond 2**64 - 1 to
 * the hashlib kernel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HAVE_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define HAVE_SHANI 0
#endif

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

/* ------------------------------------------------------------------ portable compression */

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define S0(x) (ROR(x, 2) ^ ROR(x, 13) ^ ROR(x, 22))
#define S1(x) (ROR(x, 6) ^ ROR(x, 11) ^ ROR(x, 25))
#define G0(x) (ROR(x, 7) ^ ROR(x, 18) ^ ((x) >> 3))
#define G1(x) (ROR(x, 17) ^ ROR(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* One round with the eight working variables renamed instead of shifted (the usual trick:
 * the compiler then keeps them all in registers). */
#define RND(a, b, c, d, e, f, g, h, i)                                                      \
    do {                                                                                    \
        uint32_t t1_ = h + S1(e) + CH(e, f, g) + K256[i] + w[i];                            \
        d += t1_;                                                                           \
        h = t1_ + S0(a) + MAJ(a, b, c);                                                     \
    } while (0)

#define RND8(i)                                                                             \
    RND(a, b, c, d, e, f, g, h, (i) + 0);                                                   \
    RND(h, a, b, c, d, e, f, g, (i) + 1);                                                   \
    RND(g, h, a, b, c, d, e, f, (i) + 2);                                                   \
    RND(f, g, h, a, b, c, d, e, (i) + 3);                                                   \
    RND(e, f, g, h, a, b, c, d, (i) + 4);                                                   \
    RND(d, e, f, g, h, a, b, c, (i) + 5);                                                   \
    RND(c, d, e, f, g, h, a, b, (i) + 6);                                                   \
    RND(b, c, d, e, f, g, h, a, (i) + 7)

static void compress_portable(uint32_t st[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 64; i++) w[i] = G1(w[i - 2]) + w[i - 7] + G0(w[i - 15]) + w[i - 16];
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
    RND8(0);
    RND8(8);
    RND8(16);
    RND8(24);
    RND8(32);
    RND8(40);
    RND8(48);
    RND8(56);
    st[0] += a, st[1] += b, st[2] += c, st[3] += d;
    st[4] += e, st[5] += f, st[6] += g, st[7] += h;
}

/* ------------------------------------------------------------------ difficulty on words */

/* "The first `difficulty` bits are zero", read from the state words (big-endian digest
 * words), whole words first and then the top bits of the next one. */
typedef struct {
    int full;       /* words that must be 0 */
    uint32_t mask;  /* bits of word[full] that must be 0 (0: none) */
    uint32_t first; /* mask for word 0 alone: the cheap filter of the SHA-NI path */
} Target;

static Target make_target(int difficulty) {
    Target t;
    int rem = difficulty % 32;
    t.full = difficulty / 32;
    t.mask = rem ? 0xffffffffu << (32 - rem) : 0;
    t.first = difficulty >= 32 ? 0xffffffffu : t.mask;
    return t;
}

static inline int meets(const uint32_t st[8], const Target *t) {
    for (int i = 0; i < t->full; i++)
        if (st[i]) return 0;
    return t->full >= 8 || (st[t->full] & t->mask) == 0;
}

/* ------------------------------------------------------------------ the nonce block */

/* The second block: decimal digits of the nonce, 0x80, zeros, the message length in bits. */
typedef struct {
    uint8_t b[64];
    int len; /* digits */
} NonceBlock;

static void pad_block(NonceBlock *nb) {
    uint64_t bits = (uint64_t)(64 + nb->len) * 8;
    nb->b[nb->len] = 0x80;
    memset(nb->b + nb->len + 1, 0, 56 - (size_t)nb->len - 1);
    for (int i = 0; i < 8; i++) nb->b[63 - i] = (uint8_t)(bits >> (8 * i));
}

static void set_nonce(NonceBlock *nb, uint64_t n) {
    char text[24];
    nb->len = snprintf(text, sizeof text, "%llu", (unsigned long long)n);
    memcpy(nb->b, text, (size_t)nb->len);
    pad_block(nb);
}

/* n += k (k <= 9) on the digits, with the carry; a longer number moves the padding. */
static inline void add_small(NonceBlock *nb, unsigned k) {
    int i = nb->len - 1;
    unsigned c = (unsigned)(nb->b[i] - '0') + k;
    while (c >= 10) {
        nb->b[i] = (uint8_t)('0' + c - 10);
        if (--i < 0) {
            memmove(nb->b + 1, nb->b, (size_t)nb->len);
            nb->b[0] = '1';
            nb->len++;
            pad_block(nb);
            return;
        }
        c = (unsigned)(nb->b[i] - '0') + 1;
    }
    nb->b[i] = (uint8_t)('0' + c);
}

/* The full digest of one block, checked exactly: the SHA-NI path's filter only looks at
 * word 0, so its candidates are confirmed here (rare: one in 2**min(d, 32)). */
static int confirm(const uint32_t mid[8], const NonceBlock *nb, const Target *t,
                   uint32_t out[8]) {
    memcpy(out, mid, 32);
    compress_portable(out, nb->b);
    return meets(out, t);
}

typedef struct {
    uint32_t mid[8];
    Target target;
    uint64_t first, last; /* inclusive: last may be 2**64 - 1 */
    uint64_t found;
    uint32_t digest[8];
} Search;

static int search_portable(Search *s) {
    NonceBlock nb;
    set_nonce(&nb, s->first);
    for (uint64_t n = s->first;; n++) {
        uint32_t st[8];
        memcpy(st, s->mid, 32);
        compress_portable(st, nb.b);
        if (meets(st, &s->target)) {
            s->found = n;
            memcpy(s->digest, st, 32);
            return 1;
        }
        if (n == s->last) return 0;
        add_small(&nb, 1);
    }
}

#if HAVE_SHANI
/* ------------------------------------------------------------------ x86 SHA extensions */

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* Message groups i = 0..15 of four words each, in M[i & 3]: the schedule of the SHA
 * extensions (msg1 then msg2 finish W[4i+4 ..] three groups ahead), as in Intel's paper. */
#define SHANI_GROUP(i, S0, S1, M)                                                           \
    do {                                                                                    \
        __m128i k_ = _mm_add_epi32(M[(i) & 3], _mm_loadu_si128((const __m128i *)(K256 + 4 * (i)))); \
        S1 = _mm_sha256rnds2_epu32(S1, S0, k_);                                             \
        if ((i) >= 3 && (i) <= 14) {                                                        \
            __m128i t_ = _mm_alignr_epi8(M[(i) & 3], M[((i) + 3) & 3], 4);                   \
            M[((i) + 1) & 3] =                                                              \
                _mm_sha256msg2_epu32(_mm_add_epi32(M[((i) + 1) & 3], t_), M[(i) & 3]);      \
        }                                                                                   \
        S0 = _mm_sha256rnds2_epu32(S0, S1, _mm_shuffle_epi32(k_, 0x0E));                    \
        if ((i) >= 1 && (i) <= 12) M[((i) + 3) & 3] = _mm_sha256msg1_epu32(M[((i) + 3) & 3], M[(i) & 3]); \
    } while (0)

#define SHANI_ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

SHANI static inline void shani_load(__m128i M[4], const uint8_t *block) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    for (int j = 0; j < 4; j++)
        M[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * j)), bswap);
}

/* The midstate in the instructions' layout: ABEF and CDGH. */
SHANI static void shani_state(const uint32_t st[8], __m128i *abef, __m128i *cdgh) {
    __m128i dcba = _mm_loadu_si128((const __m128i *)st);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(st + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    *abef = _mm_alignr_epi8(cdab, efgh, 8);
    *cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
}

/* Word 0 of the digest (A) is lane 3 of ABEF: the filter needs nothing else. */
#define SHANI_WORD0(abef) ((uint32_t)_mm_extract_epi32(abef, 3))

/* One stream: nonce n in one block, one compression per attempt. */
SHANI static int search_shani_1(Search *s) {
    __m128i abef0, cdgh0;
    shani_state(s->mid, &abef0, &cdgh0);
    NonceBlock nb;
    set_nonce(&nb, s->first);
    for (uint64_t n = s->first;; n++) {
        __m128i M[4], a0 = abef0, a1 = cdgh0;
        shani_load(M, nb.b);
#define G1S(i) SHANI_GROUP(i, a0, a1, M);
        SHANI_ALL(G1S)
#undef G1S
        a0 = _mm_add_epi32(a0, abef0);
        if ((SHANI_WORD0(a0) & s->target.first) == 0 && confirm(s->mid, &nb, &s->target, s->digest)) {
            s->found = n;
            return 1;
        }
        if (n == s->last) return 0;
        add_small(&nb, 1);
    }
}

/* Two streams: nonces n and n + 1 in two blocks, each stepped by 2, their rounds
 * interleaved so one's sha256rnds2 runs while the other's waits.  The smaller nonce is
 * checked first, so the answer is still the smallest.  An odd tail runs on one stream. */
SHANI static int search_shani_2(Search *s) {
    __m128i abef0, cdgh0;
    shani_state(s->mid, &abef0, &cdgh0);
    NonceBlock x, y;
    uint64_t n = s->first;
    set_nonce(&x, n);
    if (s->last - n >= 1) set_nonce(&y, n + 1);
    while (s->last - n >= 1) {
        __m128i P[4], Q[4], p0 = abef0, p1 = cdgh0, q0 = abef0, q1 = cdgh0;
        shani_load(P, x.b);
        shani_load(Q, y.b);
#define G2S(i) SHANI_GROUP(i, p0, p1, P); SHANI_GROUP(i, q0, q1, Q);
        SHANI_ALL(G2S)
#undef G2S
        p0 = _mm_add_epi32(p0, abef0);
        q0 = _mm_add_epi32(q0, abef0);
        if ((SHANI_WORD0(p0) & s->target.first) == 0 && confirm(s->mid, &x, &s->target, s->digest)) {
            s->found = n;
            return 1;
        }
        if ((SHANI_WORD0(q0) & s->target.first) == 0 && confirm(s->mid, &y, &s->target, s->digest)) {
            s->found = n + 1;
            return 1;
        }
        if (s->last - n == 1) return 0; /* n + 2 may not exist: last can be 2**64 - 1 */
        n += 2;
        add_small(&x, 2);
        add_small(&y, 2);
    }
    Search tail = *s;
    tail.first = n;
    if (!search_shani_1(&tail)) return 0;
    s->found = tail.found;
    memcpy(s->digest, tail.digest, 32);
    return 1;
}
#endif

/* ------------------------------------------------------------------ Python interface */

enum { PATH_PORTABLE, PATH_SHANI, PATH_SHANI_1 };

static int cpu_has_shani(void) {
#if HAVE_SHANI
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 29)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
#else
    return 0;
#endif
}

/* Asked once, when the module loads: CPUID is cheap on bare metal, but in a virtual machine
 * it traps to the hypervisor, and two of them cost ~20 us: more than a whole no-op task's
 * search (one hash) and a tenth of its queue overhead. */
static int has_shani = 0;

static int path_of(const char *name, int shani) {
    if (strcmp(name, "portable") == 0) return PATH_PORTABLE;
    if (shani && strcmp(name, "sha-ni") == 0) return PATH_SHANI;
    if (shani && strcmp(name, "sha-ni-1") == 0) return PATH_SHANI_1;
    return -1;
}

static int run_search(Search *s, int path) {
#if HAVE_SHANI
    if (path == PATH_SHANI) return search_shani_2(s);
    if (path == PATH_SHANI_1) return search_shani_1(s);
#endif
    (void)path;
    return search_portable(s);
}

static int to_u64(PyObject *obj, uint64_t *out, const char *what) {
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int", what);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be in 0 .. 2**64 - 1", what);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_search(PyObject *args, Search *s, int *path) {
    const char *prev, *name;
    Py_ssize_t prev_len;
    int difficulty;
    PyObject *first, *last;
    if (!PyArg_ParseTuple(args, "y#iOOs", &prev, &prev_len, &difficulty, &first, &last, &name))
        return -1;
    if (prev_len != 64) {
        PyErr_SetString(PyExc_ValueError, "prev must be 64 bytes");
        return -1;
    }
    if (difficulty < 0 || difficulty > 256) {
        PyErr_SetString(PyExc_ValueError, "difficulty must be in 0 .. 256");
        return -1;
    }
    if (to_u64(first, &s->first, "first") < 0 || to_u64(last, &s->last, "last") < 0) return -1;
    if (s->first > s->last) {
        PyErr_SetString(PyExc_ValueError, "first must be <= last");
        return -1;
    }
    *path = path_of(name, has_shani);
    if (*path < 0) {
        PyErr_Format(PyExc_ValueError, "no kernel path %R on this CPU", PyTuple_GET_ITEM(args, 4));
        return -1;
    }
    memcpy(s->mid, H0, sizeof H0);
    compress_portable(s->mid, (const uint8_t *)prev);
    s->target = make_target(difficulty);
    return 0;
}

static PyObject *digest_bytes(const uint32_t st[8]) {
    uint8_t out[32];
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24);
        out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8);
        out[4 * i + 3] = (uint8_t)st[i];
    }
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

PyDoc_STRVAR(search_doc,
             "search(prev, difficulty, first, last, path) -> (n, digest) | None\n\n"
             "Smallest n in [first, last] (inclusive, both < 2**64) whose SHA-256 of prev\n"
             "(64 bytes, hashed as given) + decimal(n) has `difficulty` leading zero bits.");

static PyObject *kernel_search(PyObject *self, PyObject *args) {
    (void)self;
    Search s;
    int path, found;
    if (parse_search(args, &s, &path) < 0) return NULL;
    /* The GIL is released: the worker's heartbeat thread keeps renewing its lease. */
    Py_BEGIN_ALLOW_THREADS
    found = run_search(&s, path);
    Py_END_ALLOW_THREADS
    if (!found) Py_RETURN_NONE;
    PyObject *digest = digest_bytes(s.digest);
    if (digest == NULL) return NULL;
    return Py_BuildValue("(KN)", (unsigned long long)s.found, digest);
}

PyDoc_STRVAR(meets_doc,
             "meets_words(digest, difficulty) -> bool\n\n"
             "The word-level difficulty test of the search, on a given 32-byte digest (tests).");

static PyObject *kernel_meets_words(PyObject *self, PyObject *args) {
    (void)self;
    const char *digest;
    Py_ssize_t len;
    int difficulty;
    if (!PyArg_ParseTuple(args, "y#i", &digest, &len, &difficulty)) return NULL;
    if (len != 32 || difficulty < 0 || difficulty > 256) {
        PyErr_SetString(PyExc_ValueError, "want a 32-byte digest and difficulty 0 .. 256");
        return NULL;
    }
    uint32_t st[8];
    for (int i = 0; i < 8; i++) st[i] = load_be32((const uint8_t *)digest + 4 * i);
    Target t = make_target(difficulty);
    return PyBool_FromLong(meets(st, &t));
}

PyDoc_STRVAR(paths_doc, "paths() -> tuple of the paths this CPU can run, best first.");

static PyObject *kernel_paths(PyObject *self, PyObject *unused) {
    (void)self, (void)unused;
    if (has_shani) return Py_BuildValue("(sss)", "sha-ni", "sha-ni-1", "portable");
    return Py_BuildValue("(s)", "portable");
}

static PyMethodDef kernel_methods[] = {
    {"search", kernel_search, METH_VARARGS, search_doc},
    {"meets_words", kernel_meets_words, METH_VARARGS, meets_doc},
    {"paths", kernel_paths, METH_NOARGS, paths_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "blpopq._kernel",
    "Native SHA-256 nonce search for blpopq (see blpopq.kernels).", -1, kernel_methods,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernel(void) {
    has_shani = cpu_has_shani();
    return PyModule_Create(&kernel_module);
}
