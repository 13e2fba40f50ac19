/*
 * fuzz_tracestate.c: apm_sample_rate_from_tracestate() (translate/apm/apm_sampling.c) on
 * arbitrary bytes, the W3C tracestate of a span as any sender may write it. Oracles: a
 * probability found is in (0, 1]; the answer is the same with optional whitespace around the
 * whole list (W3C OWS, trimmed per member; none after a trailing comma, where it would be a
 * member of its own), as long as that stays within the 1024-byte limit.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apm_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    double rate = -1;
    int ok = apm_sample_rate_from_tracestate((const char *)data, size, &rate);
    if (ok && !(rate > 0 && rate <= 1 && isfinite(rate))) {
        abort();
    }
    if (size > 0 && size + 2 <= 1024) {
        char buf[1024];
        buf[0] = ' ';
        memcpy(buf + 1, data, size);
        /* after a trailing ',' a blank would be one more (empty) member, which counts
         * toward the limit of 32 as in Go's scanner: pad that end only otherwise */
        size_t n2 = size + 1;
        if (data[size - 1] != ',') {
            buf[n2++] = '\t';
        }
        double rate2 = -1;
        int ok2 = apm_sample_rate_from_tracestate(buf, n2, &rate2);
        if (ok2 != ok || (ok && rate2 != rate)) {
            abort();
        }
    }
    return 0;
}
