/*
 * o2d_inflate.h: gzip decompression with a hard limit on the output. The limit is checked
 * as the data inflates, so a decompression bomb fails before it allocates past the limit
 * (CVE-2024-36129 was the Collector's version of this bug).
 */
#ifndef O2D_INFLATE_H
#define O2D_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "o2d_buf.h"

/*
 * Inflates the gzip data in[0..len) (RFC 1952; concatenated members are one stream) and
 * appends it to out, whose max is the limit. O2D_ERR_TOO_LARGE past the limit,
 * O2D_ERR_INVALID with a reason for corrupt, truncated or trailing data, O2D_ERR_NOMEM.
 */
int o2d_gunzip(const uint8_t *in, size_t len, struct o2d_buf *out, const char **reason);

#endif
