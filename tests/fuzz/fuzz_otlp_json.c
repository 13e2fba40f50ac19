/*
 * fuzz_otlp_json.c: libFuzzer target for otlp_json_decode(). Each input is decoded as traces,
 * logs and metrics into a reset arena with a modest limit, so the too-large paths are reached
 * too. A decoded message must pack and unpack with protobuf-c (which walks every pointer and
 * count); a refused one must come with a reason and a status a receiver can map.
 * Seeds: tests/fuzz/corpus/otlp_json/ (the shapes the OpenTelemetry JS SDK sends).
 */
#include <stdint.h>
#include <stdlib.h>

#include "o2d.h"
#include "otlp.h"

#define FUZZ_ARENA_LIMIT (1024 * 1024)

static void check_message(const ProtobufCMessage *m)
{
    size_t size = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(size + 1);
    if (buf == NULL) {
        return;
    }
    if (protobuf_c_message_pack(m, buf) != size) {
        abort();
    }
    ProtobufCMessage *u = protobuf_c_message_unpack(m->descriptor, NULL, size, buf);
    if (u == NULL) {
        abort();
    }
    protobuf_c_message_free_unpacked(u, NULL);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct o2d_arena arena;
    static int initialized;
    static const enum otlp_signal sigs[] = {OTLP_SIGNAL_TRACES, OTLP_SIGNAL_LOGS,
                                            OTLP_SIGNAL_METRICS};

    if (!initialized) {
        o2d_arena_init(&arena, FUZZ_ARENA_LIMIT);
        initialized = 1;
    }
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        void *msg = NULL;
        const char *reason = NULL;
        o2d_arena_reset(&arena);
        int rv = otlp_json_decode(&arena, sigs[i], data, size, &msg, &reason);
        if (rv == O2D_OK) {
            if (msg == NULL || reason != NULL) {
                abort();
            }
            check_message(msg);
        } else if ((rv != O2D_ERR_INVALID && rv != O2D_ERR_TOO_LARGE && rv != O2D_ERR_NOMEM) ||
                   reason == NULL || msg != NULL) {
            abort();
        }
    }
    return 0;
}
