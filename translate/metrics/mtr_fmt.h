/* mtr_fmt.h: number formats of the metrics mapping (mtr_format.c). out holds 64 bytes. */
#ifndef MTR_FMT_H
#define MTR_FMT_H

#include <stddef.h>

#define MTR_FLOAT_CAP 64

/* formatFloat (metrics_translator.go): "inf", "0", "0.5", "1.0", "1e+06.0". */
void mtr_format_float(double f, char *out, size_t cap);
/* pcommon's float64 AsString: the ES6 shortest form ("1e-7", "0.5", "100"). */
void mtr_format_es6(double f, char *out, size_t cap);

#endif
