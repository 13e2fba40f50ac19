/*
 * fuzz_otlp_decode.c: the protobuf ingest path: bytes -> pre-scan -> protobuf-c unpack ->
 * validation, for each signal, into an arena with a limit; one input in four also runs
 * with allocation failures injected (fluent-bit's ctrace_fuzzer does the same).
 */
#include <stddef.h>
#include <stdint.h>

#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct o2d_arena a;
    o2d_arena_init(&a, 16 * size + 256 * 1024);
    for (int sig = 0; sig < 3; sig++) {
        struct otlp_request req;
        const char *reason;
        if (size > 0 && data[0] % 4 == 0) {
            o2d_alloc_fail_after(data[size - 1] % 8);
        }
        otlp_decode(&a, (enum otlp_signal)sig, OTLP_ENC_PROTOBUF, data, size, &req, &reason);
        o2d_alloc_fail_after(-1);
        o2d_arena_reset(&a);
    }
    o2d_arena_cleanup(&a);
    return 0;
}
