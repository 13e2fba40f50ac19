/*
 * llmobs_inputs.h: what the LLM Obs trace buffer holds, kept on disk (with
 * exporters.datadog.sending_queue.storage), so that an acknowledged LLM span or gen_ai log
 * record survives kill -9 while it waits in the buffer for its parent chain.
 *
 * What is stored is the buffer's input, not its state: a traces request with LLM Obs spans
 * (its protobuf), a logs request with gen_ai records (its protobuf), or, for a request whose
 * spans only link others to their root, the ids of its spans. A request is appended (and
 * durable) before the buffer takes it, so it is acknowledged only then. An input is settled
 * once the buffer must have released everything it brought: a poll that was not held back
 * for room ran later than the buffer's deadline after the input was added (the deadline runs
 * from each span's and record's arrival), and what that poll released was queued (on disk).
 * At start the inputs left are given to the buffer again, oldest first, one at a time: events
 * they had already produced before a crash may be sent twice (at least once).
 */
#ifndef O2D_LLMOBS_INPUTS_H
#define O2D_LLMOBS_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "datadog.h"
#include "llmobs.h"
#include "otlp.h"

enum lo_input_kind {
    LO_INPUT_TRACES = 1,   /* an ExportTraceServiceRequest */
    LO_INPUT_LOGS = 2,     /* an ExportLogsServiceRequest */
    LO_INPUT_SKELETON = 3, /* span ids only (struct llmobs_ids, as lo_inputs_ids writes them) */
};

struct lo_inputs;

/* *out NULL (and O2D_OK) when the storage is off; `deadline_ms` is the longest the buffer
 * holds an input's spans and records (its timeout, plus the log join window a span may wait
 * on a held parent). An error is logged. */
int lo_inputs_open(struct lo_inputs **out, const struct datadog_config *cfg, int64_t deadline_ms);
void lo_inputs_close(struct lo_inputs *in);

/* Appends one input and returns once it is durable: *seq is its number. O2D_OK,
 * O2D_ERR_BUSY (full, or the disk failed: the request must be refused, retry later) or
 * O2D_ERR_TOO_LARGE (larger than a segment: refused for good). */
int lo_inputs_add_msg(struct lo_inputs *in, enum lo_input_kind kind, const ProtobufCMessage *msg,
                      uint64_t *seq);
int lo_inputs_add_ids(struct lo_inputs *in, const struct llmobs_ids *ids, size_t n, uint64_t *seq);
/* The buffer took input `seq` at monotonic time now_ms (after it was added there). */
void lo_inputs_taken(struct lo_inputs *in, uint64_t seq, int64_t now_ms);
/* A poll that began at poll_ms released everything due and its events were queued: settles
 * the inputs taken more than the deadline before it; `all` (the buffer is empty after a
 * forced poll): every input taken before it. */
void lo_inputs_released(struct lo_inputs *in, int64_t poll_ms, int all);

/* Gives every input left by an earlier run to fn, oldest first (a traces or logs request
 * decoded into a scratch arena, or ids); fn adds it to the buffer and calls lo_inputs_taken.
 * Returns the inputs replayed. */
typedef void (*lo_replay_fn)(void *ctx, uint64_t seq, enum lo_input_kind kind,
                             const struct otlp_request *req, const struct llmobs_ids *ids,
                             size_t n_ids);
size_t lo_inputs_replay(struct lo_inputs *in, lo_replay_fn fn, void *ctx);

#endif
