/*
 * mtr_format.c: the strings Datadog's metrics mapping makes from numbers and attribute values.
 *   - formatFloat (metrics_translator.go): bucket bounds and quantiles in tags: "inf", "-inf",
 *     "nan", "0", else Go's strconv 'g' shortest form with ".0" added to whole numbers.
 *   - pcommon Value.AsString (utils.FormatKeyValueTag's value): strings as they are, bools,
 *     ints in decimal, doubles in the ES6 shortest form, bytes in base64, arrays and maps as
 *     compact JSON; an empty value is tagged "n/a".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtr_fmt.h"
#include "o2d.h"

/* The shortest digits that read back as v (v finite, nonzero): digits[0..nd) and the decimal
 * exponent of the first digit. */
static void shortest(double v, char *digits, int *nd, int *exp10)
{
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, fabs(v));
        if (strtod(tmp, NULL) == fabs(v) || p == 17) {
            break;
        }
    }
    int n = 0;
    const char *s = tmp;
    for (; *s != 'e'; s++) {
        if (*s >= '0' && *s <= '9') {
            digits[n++] = *s;
        }
    }
    while (n > 1 && digits[n - 1] == '0') {
        n--;
    }
    digits[n] = '\0';
    *nd = n;
    *exp10 = atoi(s + 1);
}

static void fixed(char *out, size_t cap, int neg, const char *d, int nd, int e)
{
    size_t o = 0;
    if (neg) {
        out[o++] = '-';
    }
    if (e < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -e - 1; i++) {
            out[o++] = '0';
        }
        for (int i = 0; i < nd; i++) {
            out[o++] = d[i];
        }
    } else {
        for (int i = 0; i <= e || i < nd; i++) {
            if (i == e + 1) {
                out[o++] = '.';
            }
            out[o++] = i < nd ? d[i] : '0';
        }
    }
    out[o] = '\0';
    (void)cap;
}

/* Go's %e with shortest digits: "1e+06", "1.5e-07"; min2: exponent has at least 2 digits. */
static void expo(char *out, size_t cap, int neg, const char *d, int nd, int e, int min2)
{
    size_t o = 0;
    if (neg) {
        out[o++] = '-';
    }
    out[o++] = d[0];
    if (nd > 1) {
        out[o++] = '.';
        for (int i = 1; i < nd; i++) {
            out[o++] = d[i];
        }
    }
    snprintf(out + o, cap - o, min2 ? "e%c%02d" : "e%c%d", e < 0 ? '-' : '+', abs(e));
}

void mtr_format_float(double f, char *out, size_t cap)
{
    if (isinf(f)) {
        snprintf(out, cap, f > 0 ? "inf" : "-inf");
        return;
    }
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (f == 0) {
        snprintf(out, cap, "0");
        return;
    }
    char d[24];
    int nd, e;
    shortest(f, d, &nd, &e);
    /* strconv 'g' with the shortest precision decides with eprec = 6: %e when the exponent
     * is < -4 or >= 6 (so 1e+06, 1.234567e+06), %f otherwise. */
    int eprec = 6;
    if (e < -4 || e >= eprec) {
        expo(out, cap, f < 0, d, nd, e, 1);
    } else {
        fixed(out, cap, f < 0, d, nd, e);
    }
    if (f == floor(f)) {
        strncat(out, ".0", cap - strlen(out) - 1);
    }
}

void mtr_format_es6(double f, char *out, size_t cap)
{
    if (f == 0) {
        snprintf(out, cap, "0");
        return;
    }
    if (!isfinite(f)) {
        /* pcommon prints a marker for these; they cannot come from JSON anyway. */
        snprintf(out, cap, "json: unsupported value: %s",
                 isnan(f) ? "NaN"
                 : f > 0  ? "+Inf"
                          : "-Inf");
        return;
    }
    char d[24];
    int nd, e;
    shortest(f, d, &nd, &e);
    double a = fabs(f);
    if (a < 1e-6 || a >= 1e21) {
        expo(out, cap, f < 0, d, nd, e, 0);
    } else {
        fixed(out, cap, f < 0, d, nd, e);
    }
}
