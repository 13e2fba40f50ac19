/*
 * test_grpc_frame.c: the gRPC message parser (whole, byte by byte, split prefixes, limits,
 * flags, truncation, extra messages), grpc-timeout, grpc-encoding decisions, method paths,
 * content-type, grpc-message percent-encoding and unpadded base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "grpc_frame.h"
#include "o2d.h"

/* Feeds `in` in pieces of `step` bytes, collecting message bytes into msg. Returns the first
 * error or O2D_OK; *prefixes counts prefix_done reports. */
static int feed_steps(struct grpc_frame *f, const uint8_t *in, size_t n, size_t step, uint8_t *msg,
                      size_t *msg_len, int *prefixes, const char **reason)
{
    *msg_len = 0;
    *prefixes = 0;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        struct grpc_frame_span sp;
        int rv = grpc_frame_feed(f, in + off, k, &sp, reason);
        *prefixes += sp.prefix_done;
        if (rv != O2D_OK) {
            return rv;
        }
        if (sp.msg_n > 0) {
            assert_true(sp.msg >= in + off && sp.msg + sp.msg_n <= in + off + k);
            memcpy(msg + *msg_len, sp.msg, sp.msg_n);
            *msg_len += sp.msg_n;
        }
    }
    return O2D_OK;
}

static const uint8_t hello[] = {0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};

static void test_whole_and_byte_by_byte(void **state)
{
    (void)state;
    for (size_t step = 1; step <= sizeof(hello); step++) {
        struct grpc_frame f;
        uint8_t msg[16];
        size_t len;
        int prefixes;
        const char *reason = NULL;
        grpc_frame_init(&f, 100);
        assert_int_equal(feed_steps(&f, hello, sizeof(hello), step, msg, &len, &prefixes, &reason),
                         O2D_OK);
        assert_int_equal(prefixes, 1);
        assert_int_equal(len, 5);
        assert_memory_equal(msg, "hello", 5);
        assert_int_equal(f.compressed, 0);
        assert_int_equal(f.msg_len, 5);
        assert_int_equal(f.state, GRPC_FRAME_DONE);
        assert_int_equal(grpc_frame_finish(&f, &reason), O2D_OK);
    }
}

static void test_prefix_split(void **state)
{
    (void)state;
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, hello, 3, &sp, &reason), O2D_OK);
    assert_int_equal(sp.prefix_done, 0);
    assert_int_equal(sp.msg_n, 0);
    assert_int_equal(f.state, GRPC_FRAME_PREFIX);
    /* the rest of the prefix and part of the message */
    assert_int_equal(grpc_frame_feed(&f, hello + 3, 4, &sp, &reason), O2D_OK);
    assert_int_equal(sp.prefix_done, 1);
    assert_int_equal(f.msg_len, 5);
    assert_int_equal(sp.msg_n, 2);
    assert_ptr_equal(sp.msg, hello + 5);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, grpc_reason_truncated);
    assert_int_equal(grpc_frame_feed(&f, hello + 7, 3, &sp, &reason), O2D_OK);
    assert_int_equal(sp.prefix_done, 0);
    assert_int_equal(sp.msg_n, 3);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_OK);
}

static void test_over_limit(void **state)
{
    (void)state;
    /* Declares 4 MiB + 1 with a 4 MiB limit: refused at the prefix, no body needed. */
    const uint8_t big[] = {0, 0x00, 0x40, 0x00, 0x01};
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    grpc_frame_init(&f, 4u << 20);
    assert_int_equal(grpc_frame_feed(&f, big, 4, &sp, &reason), O2D_OK);
    assert_int_equal(grpc_frame_feed(&f, big + 4, 1, &sp, &reason), O2D_ERR_TOO_LARGE);
    assert_string_equal(reason, grpc_reason_too_large);
    assert_int_equal(sp.prefix_done, 1);
    assert_int_equal(f.msg_len, (4u << 20) + 1);
    assert_int_equal(sp.msg_n, 0);
    /* exactly the limit is fine */
    const uint8_t at[] = {0, 0x00, 0x40, 0x00, 0x00};
    grpc_frame_init(&f, 4u << 20);
    assert_int_equal(grpc_frame_feed(&f, at, 5, &sp, &reason), O2D_OK);
    assert_int_equal(f.state, GRPC_FRAME_MESSAGE);
    /* the largest declarable length */
    const uint8_t max[] = {1, 0xff, 0xff, 0xff, 0xff};
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, max, 5, &sp, &reason), O2D_ERR_TOO_LARGE);
    assert_int_equal(f.msg_len, 0xffffffffu);
}

static void test_compressed_flag(void **state)
{
    (void)state;
    const uint8_t gz[] = {1, 0, 0, 0, 2, 0x1f, 0x8b};
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, gz, sizeof(gz), &sp, &reason), O2D_OK);
    assert_int_equal(f.compressed, 1);
    assert_int_equal(sp.msg_n, 2);

    const uint8_t bad[] = {2, 0, 0, 0, 0};
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, bad, sizeof(bad), &sp, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, grpc_reason_bad_flag);

    enum o2d_compression comp;
    assert_int_equal(grpc_frame_compression(0, GRPC_ENC_ABSENT, &comp, &reason), O2D_OK);
    assert_int_equal(comp, O2D_COMP_NONE);
    assert_int_equal(grpc_frame_compression(0, GRPC_ENC_GZIP, &comp, &reason), O2D_OK);
    assert_int_equal(comp, O2D_COMP_NONE);
    assert_int_equal(grpc_frame_compression(1, GRPC_ENC_GZIP, &comp, &reason), O2D_OK);
    assert_int_equal(comp, O2D_COMP_GZIP);
    assert_int_equal(grpc_frame_compression(1, GRPC_ENC_ABSENT, &comp, &reason), O2D_ERR_INTERNAL);
    assert_string_equal(reason, grpc_reason_flag_no_encoding);
    assert_int_equal(grpc_frame_compression(1, GRPC_ENC_IDENTITY, &comp, &reason),
                     O2D_ERR_INTERNAL);
    assert_int_equal(grpc_frame_compression(0, GRPC_ENC_OTHER, &comp, &reason),
                     O2D_ERR_UNSUPPORTED);
    assert_string_equal(reason, grpc_reason_bad_encoding);

    assert_int_equal(grpc_encoding_parse("gzip", 4), GRPC_ENC_GZIP);
    assert_int_equal(grpc_encoding_parse("identity", 8), GRPC_ENC_IDENTITY);
    assert_int_equal(grpc_encoding_parse("deflate", 7), GRPC_ENC_OTHER);
    assert_int_equal(grpc_encoding_parse("gzipx", 5), GRPC_ENC_OTHER);
    assert_int_equal(grpc_encoding_parse("", 0), GRPC_ENC_OTHER);
}

static void test_truncated(void **state)
{
    (void)state;
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    /* nothing at all */
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, grpc_reason_no_message);
    /* inside the prefix */
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, hello, 2, &sp, &reason), O2D_OK);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, grpc_reason_truncated);
    /* inside the message */
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, hello, sizeof(hello) - 1, &sp, &reason), O2D_OK);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_ERR_INVALID);
    assert_string_equal(reason, grpc_reason_truncated);
}

static void test_two_messages(void **state)
{
    (void)state;
    uint8_t two[2 * sizeof(hello)];
    memcpy(two, hello, sizeof(hello));
    memcpy(two + sizeof(hello), hello, sizeof(hello));
    for (size_t step = 1; step <= sizeof(two); step++) {
        struct grpc_frame f;
        uint8_t msg[32];
        size_t len;
        int prefixes;
        const char *reason = NULL;
        grpc_frame_init(&f, 100);
        assert_int_equal(feed_steps(&f, two, sizeof(two), step, msg, &len, &prefixes, &reason),
                         O2D_ERR_INVALID);
        assert_string_equal(reason, grpc_reason_extra);
        assert_int_equal(prefixes, 1);
        assert_int_equal(f.state, GRPC_FRAME_FAILED);
        assert_int_equal(grpc_frame_finish(&f, &reason), O2D_ERR_INVALID);
    }
    /* one trailing byte */
    uint8_t extra[sizeof(hello) + 1];
    memcpy(extra, hello, sizeof(hello));
    extra[sizeof(hello)] = 0;
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, extra, sizeof(extra), &sp, &reason), O2D_ERR_INVALID);
    assert_int_equal(sp.msg_n, 0);
}

static void test_zero_length(void **state)
{
    (void)state;
    const uint8_t empty[] = {0, 0, 0, 0, 0};
    struct grpc_frame f;
    struct grpc_frame_span sp;
    const char *reason = NULL;
    grpc_frame_init(&f, 100);
    assert_int_equal(grpc_frame_feed(&f, empty, sizeof(empty), &sp, &reason), O2D_OK);
    assert_int_equal(sp.prefix_done, 1);
    assert_int_equal(sp.msg_n, 0);
    assert_int_equal(f.msg_len, 0);
    assert_int_equal(f.state, GRPC_FRAME_DONE);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_OK);
    /* an empty DATA frame changes nothing */
    assert_int_equal(grpc_frame_feed(&f, empty, 0, &sp, &reason), O2D_OK);
    assert_int_equal(grpc_frame_finish(&f, &reason), O2D_OK);
    /* with a zero limit too */
    grpc_frame_init(&f, 0);
    assert_int_equal(grpc_frame_feed(&f, empty, sizeof(empty), &sp, &reason), O2D_OK);
}

static int64_t timeout_of(const char *s)
{
    int64_t ms = -12345;
    if (grpc_timeout_parse(s, strlen(s), &ms) != O2D_OK) {
        return -1;
    }
    return ms;
}

static void test_timeout(void **state)
{
    (void)state;
    assert_int_equal(timeout_of("100m"), 100);
    assert_int_equal(timeout_of("5S"), 5000);
    assert_int_equal(timeout_of("2M"), 120000);
    assert_int_equal(timeout_of("1H"), 3600000);
    assert_int_equal(timeout_of("1500u"), 2);
    assert_int_equal(timeout_of("1000u"), 1);
    assert_int_equal(timeout_of("1n"), 1);
    assert_int_equal(timeout_of("0m"), 0);
    assert_int_equal(timeout_of("99999999H"), 99999999LL * 3600 * 1000);
    assert_int_equal(timeout_of("00000010S"), 10000);
    /* invalid: ignored by the caller */
    assert_int_equal(timeout_of(""), -1);
    assert_int_equal(timeout_of("m"), -1);
    assert_int_equal(timeout_of("100"), -1);
    assert_int_equal(timeout_of("100x"), -1);
    assert_int_equal(timeout_of("123456789m"), -1); /* more than 8 digits */
    assert_int_equal(timeout_of("-5S"), -1);
    assert_int_equal(timeout_of("1 S"), -1);
    assert_int_equal(timeout_of("1.5S"), -1);
}

static void test_path_and_content_type(void **state)
{
    (void)state;
    enum otlp_signal sig;
    const char *t = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const char *l = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const char *m = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    assert_int_equal(grpc_path_signal(t, strlen(t), &sig), O2D_OK);
    assert_int_equal(sig, OTLP_SIGNAL_TRACES);
    assert_int_equal(grpc_path_signal(l, strlen(l), &sig), O2D_OK);
    assert_int_equal(sig, OTLP_SIGNAL_LOGS);
    assert_int_equal(grpc_path_signal(m, strlen(m), &sig), O2D_OK);
    assert_int_equal(sig, OTLP_SIGNAL_METRICS);
    assert_int_equal(grpc_path_signal(t, strlen(t) - 1, &sig), O2D_ERR_NOT_FOUND);
    assert_int_equal(grpc_path_signal("/x/Export", 9, &sig), O2D_ERR_NOT_FOUND);

    assert_true(grpc_content_type_ok("application/grpc", 16));
    assert_true(grpc_content_type_ok("application/grpc+proto", 22));
    assert_true(grpc_content_type_ok("application/grpc;charset=x", 26));
    assert_false(grpc_content_type_ok("application/grpcx", 17));
    assert_false(grpc_content_type_ok("application/json", 16));
    assert_false(grpc_content_type_ok("application/grp", 15));
}

static void test_percent_encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(grpc_percent_encode("plain text", 10, out, sizeof(out)), 10);
    assert_string_equal(out, "plain text");
    const char in[] = "50% \xc3\xa9t\xc3\xa9\n\x7f~";
    grpc_percent_encode(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out, "50%25 %C3%A9t%C3%A9%0A%7F~");
    /* bytes are not assumed NUL-terminated, and NUL itself is escaped */
    grpc_percent_encode("a\0b", 3, out, sizeof(out));
    assert_string_equal(out, "a%00b");
    /* bounded: never splits an escape */
    assert_int_equal(grpc_percent_encode("ab%", 3, out, 5), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(grpc_percent_encode("ab%", 3, out, 6), 5);
    assert_string_equal(out, "ab%25");
    assert_int_equal(grpc_percent_encode("abc", 3, out, 1), 0);
    assert_string_equal(out, "");
}

static void test_base64(void **state)
{
    (void)state;
    char out[GRPC_BASE64_LEN(16)];
    assert_int_equal(grpc_base64_unpadded((const uint8_t *)"", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    grpc_base64_unpadded((const uint8_t *)"f", 1, out, sizeof(out));
    assert_string_equal(out, "Zg");
    grpc_base64_unpadded((const uint8_t *)"fo", 2, out, sizeof(out));
    assert_string_equal(out, "Zm8");
    grpc_base64_unpadded((const uint8_t *)"foo", 3, out, sizeof(out));
    assert_string_equal(out, "Zm9v");
    grpc_base64_unpadded((const uint8_t *)"foobar", 6, out, sizeof(out));
    assert_string_equal(out, "Zm9vYmFy");
    const uint8_t bin[] = {0x08, 0x0e, 0xff, 0x00};
    grpc_base64_unpadded(bin, sizeof(bin), out, sizeof(out));
    assert_string_equal(out, "CA7/AA");
    /* too small an output is refused, not overrun */
    assert_int_equal(grpc_base64_unpadded((const uint8_t *)"foo", 3, out, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_and_byte_by_byte),
        cmocka_unit_test(test_prefix_split),
        cmocka_unit_test(test_over_limit),
        cmocka_unit_test(test_compressed_flag),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_two_messages),
        cmocka_unit_test(test_zero_length),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_path_and_content_type),
        cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
