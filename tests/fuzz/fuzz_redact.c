/*
 * fuzz_redact.c: the redaction processor on hostile requests. The first byte picks the
 * signal (traces, logs, metrics) and one of four rule sets: every built-in pattern; the
 * Collector's key rules with a summary and blocked_values; drop_message_contents with HMAC
 * hashing; fail-closed keys (allow_all_keys false, nothing allowed). The rest is an OTLP
 * request (OTLP/JSON when it starts with '{', protobuf otherwise), decoded into an arena
 * whose limit is sometimes tight, then redacted in place. Checks: redact_request answers
 * O2D_OK or an out-of-memory status; after OK the request still packs as protobuf (every
 * array and string it rewrote is consistent), and with fail-closed keys no attribute is left
 * but the processor's own redaction.* ones (a client's own "redaction.x" may pass only when
 * it is one of those names). One input in four runs with allocation failures
 * injected. Checks end in abort(), which libFuzzer reports.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_arena.h"
#include "otlp.h"
#include "redact.h"

static struct redact_rules *rules[4];

static void build(void)
{
    char err[512];
    struct redact_config all = {.allow_all_keys = 1};
    for (size_t i = 0; redact_builtin_name(i) != NULL; i++) {
        all.patterns[all.n_patterns++] = redact_builtin_name(i);
    }
    struct redact_config keys = {
        .allowed_keys = {"a", "b", "gen_ai.input.messages", "input.value"},
        .n_allowed_keys = 4,
        .ignored_keys = {"b"},
        .n_ignored_keys = 1,
        .blocked_key_patterns = {".*key.*"},
        .n_blocked_key_patterns = 1,
        .blocked_values = {"[0-9]{4,}", "(x+x+)+y"},
        .n_blocked_values = 2,
        .allowed_values = {"^ok"},
        .n_allowed_values = 1,
        .patterns = {"email"},
        .n_patterns = 1,
        .summary = REDACT_SUMMARY_DEBUG,
        .match_limit = 2000,
    };
    struct redact_config drop = {
        .allow_all_keys = 1,
        .drop_message_contents = 1,
        .patterns = {"email", "credit_card", "ipv6"},
        .n_patterns = 3,
        .hash = REDACT_HASH_HMAC_SHA256,
        .hmac_key = "fuzz",
    };
    struct redact_config closed = {.summary = REDACT_SUMMARY_INFO};
    if (redact_rules_new(&rules[0], &all, err, sizeof(err)) != O2D_OK ||
        redact_rules_new(&rules[1], &keys, err, sizeof(err)) != O2D_OK ||
        redact_rules_new(&rules[2], &drop, err, sizeof(err)) != O2D_OK ||
        redact_rules_new(&rules[3], &closed, err, sizeof(err)) != O2D_OK) {
        abort();
    }
}

static void only_summary(OtlpKeyValue **kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(kvs[i]->key, "redaction.", 10) != 0) {
            abort();
        }
    }
}

/* With fail-closed keys, resource, scope and span attributes hold only redaction.*. */
static void check_closed(const struct otlp_request *req)
{
    if (req->signal != OTLP_SIGNAL_TRACES) {
        return;
    }
    for (size_t i = 0; i < req->msg.traces->n_resource_spans; i++) {
        OtlpResourceSpans *rs = req->msg.traces->resource_spans[i];
        if (rs->resource != NULL) {
            only_summary(rs->resource->attributes, rs->resource->n_attributes);
        }
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            for (size_t k = 0; k < rs->scope_spans[j]->n_spans; k++) {
                OtlpSpan *sp = rs->scope_spans[j]->spans[k];
                only_summary(sp->attributes, sp->n_attributes);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rules[0] == NULL) {
        build();
    }
    if (size < 2) {
        return 0;
    }
    unsigned mode = data[0];
    data++;
    size--;
    enum otlp_signal sig = (enum otlp_signal)(mode % 3);
    unsigned set = (mode / 3) % 4;
    int faulty = (mode / 12) % 4 == 3;
    enum otlp_encoding enc = data[0] == '{' ? OTLP_ENC_JSON : OTLP_ENC_PROTOBUF;
    struct o2d_arena a;
    /* sometimes just enough to decode, so that redaction's own strings hit the limit */
    o2d_arena_init(&a, (mode & 0x80) ? 64 * size + 4096 : 16 * size + (1 << 20));
    struct otlp_request req;
    const char *reason;
    if (otlp_decode(&a, sig, enc, data, size, &req, &reason) == O2D_OK) {
        if (faulty) {
            o2d_alloc_fail_after(data[size - 1] % 16);
        }
        int rv = redact_request(rules[set], &req);
        o2d_alloc_fail_after(-1);
        if (rv != O2D_OK && rv != O2D_ERR_NOMEM && rv != O2D_ERR_TOO_LARGE) {
            abort();
        }
        if (rv == O2D_OK) {
            const ProtobufCMessage *m = (const ProtobufCMessage *)req.msg.traces;
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *buf = malloc(n + 1);
            if (buf == NULL || protobuf_c_message_pack(m, buf) != n) {
                abort();
            }
            free(buf);
            if (set == 3) {
                check_closed(&req);
            }
        }
    }
    o2d_arena_cleanup(&a);
    return 0;
}
