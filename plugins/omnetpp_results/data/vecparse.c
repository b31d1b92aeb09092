/* Data lines of an OMNeT++ .vec ("id [event] time value\n", TAB separated) to doubles.
 *
 * Why C: np.fromstring (strtod) reads ~60 MB/s; the 1 GB goal needs >= 250 MB/s.
 * Exactness: decimal mantissas below 2^53 with |exponent| <= 22 are converted as one correctly
 * rounded multiply/divide of two exact doubles (the classic exact fast path), which gives the
 * same double as strtod; everything else (nan, inf, long mantissas, big exponents) goes to
 * strtod itself. Returns the number of lines, or -1 if any line is not a clean data line (the
 * Python side then re-reads the piece line by line to report file and line).
 */
#include <stdint.h>
#include <stdlib.h>
#include <math.h>

static const double P10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int is_sep(char c) { return c == '\t' || c == ' ' || c == '\n'; }

static const char *number(const char *p, const char *end, double *out)
{
    const char *s = p;
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
    if (!any || slow || m >= (1ULL << 53) || dexp < -22 || dexp > 22 || (p < end && !is_sep(*p))) {
        /* strtod for nan/inf/long forms; it must consume exactly up to the separator */
        const char *fe = s;
        char *ep;
        while (fe < end && !is_sep(*fe)) fe++;
        if (fe == s) return NULL;
        *out = strtod(s, &ep);
        if (ep != fe) return NULL;
        return fe;
    }
    {
        double d = (double)m;
        d = dexp < 0 ? d / P10[-dexp] : d * P10[dexp];
        *out = neg ? -d : d;
    }
    return p;
}

/* One line at *pp into f[]: number of fields (3 or 4), or -1 if not a clean data line. */
static int line(const char **pp, const char *end, double *f)
{
    const char *p = *pp;
    int k = 0;
    for (;;) {
        const char *q;
        if (k >= 4) return -1;
        q = number(p, end, &f[k]);
        if (!q) return -1;
        k++;
        p = q;
        if (*p == '\n') { p++; break; }
        while (p < end && (*p == '\t' || *p == ' ')) p++;
        if (p >= end || *p == '\n') return -1;
    }
    if (k < 3) return -1;
    *pp = p;
    return k;
}

long vec_parse_lines(const char *buf, long len, int8_t *nf, double *cols, long maxlines)
{
    const char *p = buf, *end = buf + len;
    long n = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        double f[4];
        int k;
        if (n >= maxlines) return -1;
        k = line(&p, end, f);
        if (k < 0) return -1;
        nf[n] = (int8_t)k;
        for (; k < 4; k++) f[k] = NAN;
        /* column-major output: the time and value columns come out contiguous */
        cols[n] = f[0]; cols[maxlines + n] = f[1]; cols[2 * maxlines + n] = f[2]; cols[3 * maxlines + n] = f[3];
        n++;
    }
    return n;
}

/* The same lines, with the vector id looked up in one pass (saves the numpy passes per chunk):
 * lut[id] is the declaration index (-1: undeclared), nfs/tcol/vcol per declaration give the
 * field count and the fields holding time and value. Out: pos[n] and (time, value) pairs[n][2].
 * Returns n, or -1 (bad line, undeclared id, wrong field count: the caller re-reads slowly). */
long vec_parse_pairs(const char *buf, long len, const int32_t *lut, long lutsize, const int8_t *nfs,
                     const int8_t *tcol, const int8_t *vcol, int32_t *pos, double *pairs, long maxlines)
{
    const char *p = buf, *end = buf + len;
    long n = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        double f[4];
        int k;
        int32_t d;
        if (n >= maxlines) return -1;
        k = line(&p, end, f);
        if (k < 0 || !(f[0] >= 0 && f[0] < (double)lutsize) || f[0] != (double)(long)f[0]) return -1;
        d = lut[(long)f[0]];
        if (d < 0 || nfs[d] != k) return -1;
        pos[n] = d;
        pairs[2 * n] = f[(int)tcol[d]];
        pairs[2 * n + 1] = f[(int)vcol[d]];
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
 * sum / count. Returns the number of runs, or -(i + 1) if time decreases at sample i in a run. */
long vec_segments(const int64_t *keys, const double *t, const double *v, long st, long n,
                  int64_t *starts, double *red)
{
    long i = 0, nseg = 0;
    while (i < n) {
        long s = i, c;
        double mn = v[s * st], mx = mn, sum, mean, x;
        for (i = s + 1; i < n && keys[i] == keys[s]; i++) {
            if (t[i * st] < t[(i - 1) * st]) return -(i + 1);
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

/* The block lines of a .vci ("\n"-separated rows of numbers separated by spaces, tabs or CRs) in
 * one pass: all numbers into out[], the count of each row into per_row[]. Same numbers as
 * strtod (through number() above). Returns the number of values, or -1 if a token is not one
 * complete number or an array would overflow. buf must end with '\n'. */
long vec_parse_rows(const char *buf, long len, double *out, long maxn, int32_t *per_row, long maxrows)
{
    const char *p = buf, *end = buf + len;
    long n = 0, rows = 0;
    int32_t k = 0;
    if (len <= 0) return 0;
    if (buf[len - 1] != '\n') return -1;
    while (p < end) {
        const char *te, *q;
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\r') { p++; continue; }
        if (c == '\n') {
            if (rows >= maxrows) return -1;
            per_row[rows++] = k;
            k = 0;
            p++;
            continue;
        }
        te = p;
        while (te < end && *te != ' ' && *te != '\t' && *te != '\r' && *te != '\n') te++;
        if (n >= maxn) return -1;
        q = number(p, te, &out[n]);
        if (q != te) return -1;
        n++;
        k++;
        p = te;
    }
    return rows == maxrows ? n : -1;
}

/* Do the per-line declaration indexes pos[n] consist of runs bpos[j] repeated cnt[j] times, in
 * order (the .vci's block ids and line counts)? 1 if so, else 0. */
long vec_check_runs(const int32_t *pos, long n, const int32_t *bpos, const int64_t *cnt, long nb)
{
    long i = 0, j;
    for (j = 0; j < nb; j++) {
        int32_t d = bpos[j];
        long c = (long)cnt[j], e;
        if (c < 0 || c > n - i) return 0;
        for (e = i + c; i < e; i++)
            if (pos[i] != d) return 0;
    }
    return i == n;
}
