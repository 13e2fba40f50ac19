/*
 * o2d_hex.h: one hexadecimal digit's value, either case (trace and span ids in OTLP/JSON and
 * log records, W3C tracestate thresholds).
 */
#ifndef O2D_HEX_H
#define O2D_HEX_H

/* 0..15, or -1 when c is not a hex digit. */
static inline int o2d_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

#endif
