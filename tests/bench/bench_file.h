/*
 * bench_file.h: what the callgrind harnesses of tests/bench share to read their input: a whole
 * file into memory, and the big-endian lengths of a loadgen bodies file ("O2DLOAD1", see
 * loadgen.c). Header-only: each harness is one file built on demand.
 */
#ifndef BENCH_FILE_H
#define BENCH_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The whole of path, malloc'd (free() it), its length in *len; NULL (said on stderr) when it
 * cannot be read. */
static inline uint8_t *bench_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        sz = ftell(f);
    }
    uint8_t *p = sz >= 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc(sz > 0 ? (size_t)sz : 1) : NULL;
    if (p == NULL || fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    *len = (size_t)sz;
    return p;
}

static inline uint32_t bench_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
