/*
 * stats_int.h: helpers of stats.c exposed to its unit test only.
 */
#ifndef STATS_INT_H
#define STATS_INT_H

#include <stddef.h>

#include "o2d_buf.h"

/* Default peer tag precursors (+ _dd.base_service), sorted. */
extern const char *const stats_peer_tag_keys[];
extern const size_t stats_n_peer_tag_keys;

/*
 * obfuscate.QuantizePeerIPAddresses: each comma-separated entry that is an IP address (with
 * an optional port, "ip-" or scheme prefix) becomes "blocked-ip-address", duplicates after
 * that are dropped. Appends the result to b.
 */
int stats_quantize_peer_ips(struct o2d_buf *b, const char *v, size_t len);

/*
 * The gRPC status code of a span as the agent's getGRPCStatusCode reads it from one meta
 * value: a number, a code name ("NOT_FOUND", "NotFound", "StatusCode.NOT_FOUND"), else "".
 * Writes at most 11 bytes with the NUL into out.
 */
void stats_grpc_code_from_string(const char *v, char out[static 12]);

#endif
