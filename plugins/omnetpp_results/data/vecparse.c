/* Data lines of an OMNeT++ .vec ("id [event] time value", TAB separated, LF or CRLF) to arrays;
 * and (at the end) the scalar items of a .sca to columns.
 *
 * Why C: np.fromstring (strtod) reads ~60 MB/s; the 1 GB goal needs >= 250 MB/s.
 * Grammar: exactly textfmt.py's (one grammar on every path). Numbers:
 *   [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?,  [+-]? nan|inf (any case),
 *   [+-]? 1.#INF|1.#IND|1.#QNAN|1.#SNAN digits*  (the Windows C runtime's spellings).
 * Vector ids are integers (1..19 digits, at most 2^63-1), never doubles.
 * Exactness: decimal mantissas below 2^53 with |exponent| <= 22 are converted as one correctly
 * rounded multiply/divide of two exact doubles (the classic exact fast path), which gives the
 * same double as strtod; other decimals, once checked against the grammar, go to strtod itself.
 * Functions return -1 (or a negative row) when a line is not a clean data line: the Python side
 * then re-reads the piece line by line to report file and line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static const double P10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Does a token end at p? (TAB, space, LF, or CR directly before LF) */
static inline int at_sep(const char *p, const char *end)
{
    if (p >= end) return 1;
    return *p == '\t' || *p == ' ' || *p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n');
}

static inline int lower(char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* nan, inf and the Windows spellings, the whole token being [s, te) */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline, cold))
#else
#define HOT static inline
#define COLD static
#endif

COLD const char *special(const char *s, const char *te, double *out)
{
    const char *p = s, *q;
    int neg = 0;
    double v;
    if (p < te && (*p == '+' || *p == '-')) { neg = (*p == '-'); p++; }
    if (te - p == 3) {
        if (lower(p[0]) == 'n' && lower(p[1]) == 'a' && lower(p[2]) == 'n') v = NAN;
        else if (lower(p[0]) == 'i' && lower(p[1]) == 'n' && lower(p[2]) == 'f') v = INFINITY;
        else return NULL;
        *out = neg ? -v : v;
        return te;
    }
    if (te - p < 6 || p[0] != '1' || p[1] != '.' || p[2] != '#') return NULL;
    q = p + 3;
    if (te - q >= 3 && !memcmp(q, "INF", 3)) { v = INFINITY; q += 3; }
    else if (te - q >= 3 && !memcmp(q, "IND", 3)) { v = NAN; q += 3; }
    else if (te - q >= 4 && (!memcmp(q, "QNAN", 4) || !memcmp(q, "SNAN", 4))) { v = NAN; q += 4; }
    else return NULL;
    while (q < te && (unsigned)(*q - '0') < 10u) q++;
    if (q != te) return NULL;
    *out = neg ? -v : v;
    return te;
}

HOT const char *number(const char *p, const char *end, double *out)
{
    const char *s = p, *te;
    int neg = 0, slow = 0, any = 0, nd = 0, dexp = 0;
    uint64_t m = 0;
    if (p < end && (*p == '-' || *p == '+')) { neg = (*p == '-'); p++; }
    while (p < end && (unsigned)(*p - '0') < 10u) {
        if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); if (m) nd++; } else { slow = 1; }
        p++; any = 1;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned)(*p - '0') < 10u) {
            if (nd < 19) { m = m * 10 + (uint64_t)(*p - '0'); if (m) nd++; dexp--; } else { slow = 1; }
            p++; any = 1;
        }
    }
    if (any && p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0, e = 0, edig = 0;
        p++;
        if (p < end && (*p == '-' || *p == '+')) { eneg = (*p == '-'); p++; }
        while (p < end && (unsigned)(*p - '0') < 10u) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++; edig = 1;
        }
        if (!edig) return NULL;
        dexp += eneg ? -e : e;
    }
    if (!any || !at_sep(p, end)) {
        te = p;
        while (!at_sep(te, end)) te++;
        return special(s, te, out);
    }
    if (slow || m >= (1ULL << 53) || dexp < -22 || dexp > 22) {
        /* a valid decimal (checked above): strtod rounds it correctly and stops exactly at p */
        char *ep;
        *out = strtod(s, &ep);
        return ep == p ? p : NULL;
    }
    {
        double d = (double)m;
        d = dexp < 0 ? d / P10[-dexp] : d * P10[dexp];
        *out = neg ? -d : d;
    }
    return p;
}

/* A vector id (or any non-negative integer field): 1..19 digits, at most 2^63-1. */
HOT const char *integer(const char *p, const char *end, int64_t *out)
{
    uint64_t v = 0;
    int nd = 0;
    while (p < end && (unsigned)(*p - '0') < 10u) {
        if (nd == 19) return NULL;
        v = v * 10 + (uint64_t)(*p - '0');
        nd++; p++;
    }
    if (!nd || v > (uint64_t)INT64_MAX || !at_sep(p, end)) return NULL;
    *out = (int64_t)v;
    return p;
}

/* Past the blanks after a token: the next token's start, or past the line end (*eol = 1). */
HOT const char *next_token(const char *p, const char *end, int *eol)
{
    while (p < end && (*p == '\t' || *p == ' ')) p++;
    *eol = 1;
    if (p < end && *p == '\n') return p + 1;
    if (p + 1 < end && p[0] == '\r' && p[1] == '\n') return p + 2;
    *eol = 0;
    return p;
}

/* One line at *pp: its id and up to 3 more numbers f[]; returns the number of fields including
 * the id (3 or 4), or -1 if not a clean data line. */
HOT int line(const char **pp, const char *end, int64_t *id, double *f)
{
    const char *p = *pp;
    int k = 0, eol;
    p = integer(p, end, id);
    if (!p) return -1;
    for (;;) {
        if (p >= end) return -1;
        p = next_token(p, end, &eol);
        if (eol) break;
        if (p >= end || *p == '\n' || *p == '\r' || k >= 3) return -1;
        p = number(p, end, &f[k]);
        if (!p) return -1;
        k++;
    }
    if (k < 2) return -1;
    *pp = p;
    return k + 1;
}

/* Generic form: ids[n], field counts nf[n] (with the id) and the other fields column-major in
 * cols[3 * maxlines] (missing ones NaN). Returns n, or -1. */
long vec_parse_lines(const char *buf, long len, int64_t *ids, int8_t *nf, double *cols, long maxlines)
{
    const char *p = buf, *end = buf + len;
    long n = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        double f[3] = {NAN, NAN, NAN};
        int k;
        if (n >= maxlines) return -1;
        k = line(&p, end, &ids[n], f);
        if (k < 0) return -1;
        nf[n] = (int8_t)k;
        cols[n] = f[0]; cols[maxlines + n] = f[1]; cols[2 * maxlines + n] = f[2];
        n++;
    }
    return n;
}

/* The same lines, with the vector id looked up in one pass: lut[id] is the declaration index
 * (-1: undeclared), nfs/tcol/vcol per declaration give the field count (with the id) and which of
 * the other fields hold time and value. Out: pos[n] and (time, value) pairs[n][2]. Returns n, or
 * -1 (bad line, undeclared id, wrong field count, time not finite: the caller re-reads slowly). */
long vec_parse_pairs(const char *buf, long len, const int32_t *lut, long lutsize, const int8_t *nfs,
                     const int8_t *tcol, const int8_t *vcol, int32_t *pos, double *pairs, long maxlines)
{
    const char *p = buf, *end = buf + len;
    long n = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        double f[3];
        int64_t id;
        int k;
        int32_t d;
        if (n >= maxlines) return -1;
        k = line(&p, end, &id, f);
        if (k < 0 || id >= lutsize) return -1;
        d = lut[id];
        if (d < 0 || nfs[d] != k) return -1;
        pos[n] = d;
        pairs[2 * n] = f[(int)tcol[d]];
        pairs[2 * n + 1] = f[(int)vcol[d]];
        if (!isfinite(pairs[2 * n])) return -1;
        n++;
    }
    return n;
}

/* numpy's pairwise summation (as np.add.reduce/reduceat use it on contiguous doubles) of a[i]
 * (sq = 0) or of (a[i] - mean)^2 (sq = 1), a with a stride of st doubles. */
static inline double el(const double *a, long i, long st, double mean, int sq)
{
    double x = a[i * st];
    if (sq) { x -= mean; x *= x; }
    return x;
}

static double pairwise(const double *a, long n, long st, double mean, int sq)
{
    if (n < 8) {
        double r = 0.;
        long i;
        for (i = 0; i < n; i++) r += el(a, i, st, mean, sq);
        return r;
    } else if (n <= 128) {
        double r[8], res;
        long i;
        int k;
        for (k = 0; k < 8; k++) r[k] = el(a, k, st, mean, sq);
        for (i = 8; i < n - (n % 8); i += 8)
            for (k = 0; k < 8; k++) r[k] += el(a, i + k, st, mean, sq);
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += el(a, i, st, mean, sq);
        return res;
    } else {
        long n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(a, n2, st, mean, sq) + pairwise(a + n2 * st, n - n2, st, mean, sq);
    }
}

/* Runs of equal keys[] (one vector's samples in a row) with their reductions, in numpy's exact
 * order so that both back ends give the same bits: np.add.reduceat is the first element plus the
 * pairwise sum of the rest; np.fmin/fmax ignore nan. t and v have a stride of st doubles.
 * Out per run j: starts[j] and red[4j..4j+3] = sum, min, max, sum of squared deviations from
 * sum / count. Returns the number of runs, or -(i + 1) if time decreases (or is NaN) at sample i
 * in a run. */
long vec_segments(const int64_t *keys, const double *t, const double *v, long st, long n,
                  int64_t *starts, double *red)
{
    long i = 0, nseg = 0;
    while (i < n) {
        long s = i, c;
        double mn = v[s * st], mx = mn, sum, mean, x;
        if (isnan(t[s * st])) return -(s + 1);
        for (i = s + 1; i < n && keys[i] == keys[s]; i++) {
            if (!(t[i * st] >= t[(i - 1) * st])) return -(i + 1);
            x = v[i * st];
            if (!(mn <= x || isnan(x))) mn = x;
            if (!(mx >= x || isnan(x))) mx = x;
        }
        c = i - s;
        sum = v[s * st] + pairwise(v + (s + 1) * st, c - 1, st, 0., 0);
        mean = sum / (double)c;
        starts[nseg] = s;
        red[4 * nseg] = sum;
        red[4 * nseg + 1] = mn;
        red[4 * nseg + 2] = mx;
        red[4 * nseg + 3] = el(v, s, st, mean, 1) + pairwise(v + (s + 1) * st, c - 1, st, mean, 1);
        nseg++;
    }
    return nseg;
}

/* .vci block lines, "\n"-terminated (CRLF accepted):
 *   id<TAB>offset length [firstEvent lastEvent] firstT lastT count min max sum sqrsum
 * Out per row r: ints[4r..4r+3] = id, offset, length, count (integers, never doubles),
 * ntok[r] = 10 or 12 (12: with event numbers), st[6r..6r+5] = firstT lastT min max sum sqrsum.
 * Returns the number of rows, or -(r + 1) if row r is malformed. */
long vec_parse_blocks(const char *buf, long len, int64_t *ints, int8_t *ntok, double *st, long maxrows)
{
    /* which tokens are integers: id offset length [e0 e1] ... count */
    static const int INT10[10] = {1, 1, 1, 0, 0, 1, 0, 0, 0, 0};
    static const int INT12[12] = {1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0};
    const char *p = buf, *end = buf + len;
    long r = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        const char *tok[12];
        int k = 0, eol = 0, j, nd = 0;
        const int *isint;
        if (r >= maxrows) return -(r + 1);
        while (!eol) {
            if (p >= end || *p == '\n' || *p == '\r' || k >= 12) return -(r + 1);
            tok[k++] = p;
            while (!at_sep(p, end)) p++;
            p = next_token(p, end, &eol);
        }
        if (k != 10 && k != 12) return -(r + 1);
        isint = k == 10 ? INT10 : INT12;
        for (j = 0; j < k; j++) {
            if (isint[j]) {
                int64_t x;
                if (!integer(tok[j], end, &x)) return -(r + 1);
                if (j == 0 || j == 1 || j == 2) ints[4 * r + j] = x;
                else if (j == k - 5) ints[4 * r + 3] = x;
            } else {
                if (!number(tok[j], end, &st[6 * r + nd])) return -(r + 1);
                nd++;
            }
        }
        ntok[r] = (int8_t)k;
        r++;
    }
    return r;
}

/* Do the per-line declaration indexes pos[n] continue the runs "bpos[j] repeated cnt[j] times"?
 * state = {j, lines of block j already seen} is carried from one piece to the next, so a block may
 * span pieces. 1 if so (state updated), else 0. */
long vec_check_runs(const int32_t *pos, long n, const int32_t *bpos, const int64_t *cnt, long nb,
                    int64_t *state)
{
    long i = 0, j = (long)state[0];
    int64_t seen = state[1];
    while (i < n) {
        int32_t d;
        long take, e;
        if (j >= nb) return 0;
        d = bpos[j];
        take = (long)(cnt[j] - seen);
        if (take > n - i) take = n - i;
        for (e = i + take; i < e; i++)
            if (pos[i] != d) return 0;
        seen += take;
        if (seen == cnt[j]) { j++; seen = 0; }
    }
    state[0] = j;
    state[1] = seen;
    return 1;
}

/* ---------------------------------------------------------------- .sca scalar lines
 * A run of scalar items as OMNeT++ writes them, each a scalar line and its attr lines:
 *   scalar MODULE NAME VALUE          (single spaces; LF or CRLF)
 *   attr KEY VALUE                    (zero or more)
 * MODULE and NAME are plain tokens (printable ASCII but blank, quote, comma and backslash) or
 * quoted strings without escapes (printable ASCII but quote and backslash); VALUE is a number of
 * textfmt.py's grammar without the Windows spellings; attr KEY and VALUE are plain tokens (comma
 * allowed) or such quoted strings. Anything else stops the run, and the Python reader takes it
 * line by line, with every rule and message it has. An item is taken only when the line after it
 * starts another item or run (an attr line, a blank or a comment line may still belong to it).
 * Names and attr blocks (the attr lines' bytes) are interned: each distinct one gets a code. */

typedef struct {
    uint64_t *hash;     /* slots (a power of 2 of them) */
    int32_t *code;      /* -1: empty slot */
    long mask;
    char *arena;        /* the distinct strings, string k at arena[offs[k], offs[k + 1]) */
    long arena_cap;
    int64_t *offs;      /* offs[0] = 0 */
    long max;           /* most strings the table takes */
    int64_t *state;     /* {strings, arena bytes used} */
} intern_t;

/* The code of s[0, n), a new one if unseen; -1 if the table or its arena is full. */
static int32_t intern(intern_t *t, const char *s, long n)
{
    uint64_t h = 1469598103934665603ULL;
    long i, k, used;
    for (i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    for (i = (long)(h & (uint64_t)t->mask);; i = (i + 1) & t->mask) {
        int32_t c = t->code[i];
        if (c < 0) break;
        if (t->hash[i] == h && t->offs[c + 1] - t->offs[c] == n && !memcmp(t->arena + t->offs[c], s, (size_t)n))
            return c;
    }
    k = (long)t->state[0];
    used = (long)t->state[1];
    if (k >= t->max || used + n > t->arena_cap) return -1;
    memcpy(t->arena + used, s, (size_t)n);
    t->offs[k + 1] = used + n;
    t->state[0] = k + 1;
    t->state[1] = used + n;
    t->hash[i] = h;
    t->code[i] = (int32_t)k;
    return (int32_t)k;
}

static inline int plain_byte(unsigned char c, int comma_ok)
{
    return c > ' ' && c < 127 && c != '"' && c != '\\' && (comma_ok || c != ',');
}

/* A token at p (plain or quoted, see above), followed by a blank (sep = ' ') or a line end
 * (sep = '\n'; *p after the call is then past it). Its text is [*s, *s + *n), *quoted says
 * whether it was quoted, *comma whether it holds a comma. NULL if it is not such a token. */
HOT const char *sca_token(const char *p, const char *end, char sep, int comma_ok,
                          const char **s, long *n, int *comma)
{
    *comma = 0;
    if (p < end && *p == '"') {
        const char *q = ++p;
        while (q < end && *q != '"') {
            unsigned char c = (unsigned char)*q;
            if (c < ' ' || c >= 127 || c == '\\') return NULL;
            if (c == ',') *comma = 1;
            q++;
        }
        if (q >= end || q == p || q - p > 10000) return NULL;
        *s = p;
        *n = q - p;
        p = q + 1;
    } else {
        const char *q = p;
        while (q < end && plain_byte((unsigned char)*q, comma_ok)) q++;
        if (q == p || q - p > 10000) return NULL;
        *s = p;
        *n = q - p;
        p = q;
    }
    if (sep == ' ') return (p < end && *p == ' ') ? p + 1 : NULL;
    if (p < end && *p == '\n') return p + 1;
    if (p + 1 < end && p[0] == '\r' && p[1] == '\n') return p + 2;
    return NULL;
}

/* Does the line at p start another item or run (so the one before it is complete)? */
static inline int starts_item(const char *p, const char *end)
{
    long left = end - p;
    return (left >= 7 && !memcmp(p, "scalar ", 7)) || (left >= 4 && !memcmp(p, "par ", 4)) ||
           (left >= 10 && !memcmp(p, "statistic ", 10)) || (left >= 4 && !memcmp(p, "run ", 4));
}

static char *csv_field(char *o, const char *s, long n, int comma)
{
    if (comma) *o++ = '"';
    memcpy(o, s, (size_t)n);
    o += n;
    if (comma) *o++ = '"';
    return o;
}

/* One scalar line at p: its CSV text "MODULE,NAME,VALUE\n" (a field with a comma quoted) at *o,
 * its value and name code. NULL if not a scalar line taken here (or the name table is full). */
HOT const char *sca_scalar(const char *p, const char *end, intern_t *names, char **o, double *val,
                           int32_t *code)
{
    const char *ms, *ns, *vs, *ve;
    long mn, nn;
    int mc, nc;
    char *w = *o;
    if (end - p < 7 || memcmp(p, "scalar ", 7)) return NULL;
    p = sca_token(p + 7, end, ' ', 0, &ms, &mn, &mc);
    if (!p) return NULL;
    p = sca_token(p, end, ' ', 0, &ns, &nn, &nc);
    if (!p) return NULL;
    vs = p;
    ve = number(p, end, val);
    if (!ve || ve == vs || memchr(vs, '#', (size_t)(ve - vs))) return NULL;
    if (ve < end && *ve == '\n') p = ve + 1;
    else if (ve + 1 < end && ve[0] == '\r' && ve[1] == '\n') p = ve + 2;
    else return NULL;
    *code = intern(names, ns, nn);
    if (*code < 0) return NULL;
    w = csv_field(w, ms, mn, mc);
    *w++ = ',';
    w = csv_field(w, ns, nn, nc);
    *w++ = ',';
    memcpy(w, vs, (size_t)(ve - vs));
    w += ve - vs;
    *w++ = '\n';
    *o = w;
    return p;
}

/* The attr lines at p, at most 64: past them (p itself if none), *k of them; NULL if one is not
 * taken here. */
HOT const char *sca_attrs(const char *p, const char *end, long *k)
{
    for (*k = 0; *k < 64 && end - p >= 5 && !memcmp(p, "attr ", 5);) {
        const char *s;
        long n;
        int c;
        p = sca_token(p + 5, end, ' ', 1, &s, &n, &c);
        if (p) p = sca_token(p, end, '\n', 1, &s, &n, &c);
        if (!p) return NULL;
        (*k)++;
    }
    return (end - p >= 5 && !memcmp(p, "attr ", 5)) ? NULL : p;
}

/* Scalar items from buf on, as many as are complete (see above), at most maxrows. Out per item:
 * text (CSV lines, at most len bytes in all), tlen (its line's bytes), val, code (name), attr
 * (attr block, -1: none).
 * out = {bytes of buf taken, text bytes written, lines taken}. Returns the number of items. */
long sca_scalars(const char *buf, long len, char *text, int32_t *tlen, double *val, int32_t *code,
                 int32_t *attr, long maxrows, intern_t *names, intern_t *attrs, int64_t *out)
{
    const char *p = buf, *end = buf + len;
    char *o = text;
    long n = 0, lines = 0;
    while (n < maxrows) {
        const char *q, *a;
        char *w = o;
        long k;
        q = sca_scalar(p, end, names, &w, &val[n], &code[n]);
        if (!q) break;
        a = sca_attrs(q, end, &k);
        if (!a || !starts_item(a, end)) break;
        if (a > q) {
            attr[n] = intern(attrs, q, a - q);
            if (attr[n] < 0) break;
        } else {
            attr[n] = -1;
        }
        tlen[n] = (int32_t)(w - o);
        o = w;
        p = a;
        lines += 1 + k;
        n++;
    }
    out[0] = p - buf;
    out[1] = o - text;
    out[2] = lines;
    return n;
}
