/*
 * test_h2_track.c: the HTTP/2 frame-boundary follower: the client magic and first SETTINGS
 * split at every byte, header blocks over HEADERS / PUSH_PROMISE and CONTINUATIONs with and
 * without END_HEADERS, zero-length and maximum-length frames, a DATA frame between, and the
 * block's start time kept across its CONTINUATIONs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "h2_track.h"

static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Appends a frame header for a payload of len bytes, then len bytes of fill when len fits. */
static size_t put_frame(uint8_t *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t stream,
                        size_t fill_max)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(stream >> 24);
    out[6] = (uint8_t)(stream >> 16);
    out[7] = (uint8_t)(stream >> 8);
    out[8] = (uint8_t)stream;
    size_t n = len <= fill_max ? len : 0;
    memset(out + H2_FRAME_HD, 0xab, n);
    return H2_FRAME_HD + n;
}

/* The magic and an empty SETTINGS frame, as every client opens. */
static size_t put_preface(uint8_t *out)
{
    memcpy(out, magic, H2_MAGIC_LEN);
    return H2_MAGIC_LEN + put_frame(out + H2_MAGIC_LEN, 0, 0x4, 0, 0, 0);
}

static void test_magic_is_24_bytes(void **state)
{
    (void)state;
    assert_int_equal(sizeof(magic) - 1, H2_MAGIC_LEN);
}

static void test_preface_split_at_every_byte(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_preface(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        struct h2_track t;
        h2_track_init(&t);
        h2_track_feed(&t, buf, cut, 5);
        assert_int_equal(t.preface_done, cut == n);
        h2_track_feed(&t, buf + cut, n - cut, 6);
        assert_int_equal(t.preface_done, 1);
        assert_int_equal(t.magic_left, 0);
        assert_int_equal(t.fh_len, 0);
        assert_int_equal(t.block_start_ms, 0);
    }
    /* And one byte at a time: done only with the last byte of SETTINGS. */
    struct h2_track t;
    h2_track_init(&t);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(t.preface_done, 0);
        h2_track_feed(&t, buf + i, 1, 7);
    }
    assert_int_equal(t.preface_done, 1);
}

static void test_preface_waits_for_a_settings_payload(void **state)
{
    (void)state;
    uint8_t buf[64];
    memcpy(buf, magic, H2_MAGIC_LEN);
    size_t n = H2_MAGIC_LEN + put_frame(buf + H2_MAGIC_LEN, 6, 0x4, 0, 0, 6);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n - 1, 1);
    assert_int_equal(t.preface_done, 0);
    assert_int_equal(t.payload_left, 1);
    h2_track_feed(&t, buf + n - 1, 1, 1);
    assert_int_equal(t.preface_done, 1);
}

static void test_headers_with_end_headers(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);
    n = put_frame(buf, 5, H2_FRAME_HEADERS, H2_FLAG_END_HEADERS, 1, 5);
    /* The frame header alone opens the block; the last payload byte closes it. */
    h2_track_feed(&t, buf, H2_FRAME_HD, 20);
    assert_int_equal(t.block_start_ms, 20);
    h2_track_feed(&t, buf + H2_FRAME_HD, n - H2_FRAME_HD - 1, 21);
    assert_int_equal(t.block_start_ms, 20);
    h2_track_feed(&t, buf + n - 1, 1, 22);
    assert_int_equal(t.block_start_ms, 0);
}

static void test_headers_then_continuations(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);

    n = put_frame(buf, 3, H2_FRAME_HEADERS, 0x1 /* END_STREAM, not END_HEADERS */, 1, 3);
    h2_track_feed(&t, buf, n, 100);
    assert_int_equal(t.block_start_ms, 100);
    /* CONTINUATIONs without END_HEADERS keep the block open and its start time. */
    for (int64_t now = 200; now < 600; now += 100) {
        n = put_frame(buf, 4, H2_FRAME_CONTINUATION, 0, 1, 4);
        h2_track_feed(&t, buf, n, now);
        assert_int_equal(t.block_start_ms, 100);
    }
    /* Other flags than END_HEADERS end nothing. */
    n = put_frame(buf, 0, H2_FRAME_CONTINUATION, (uint8_t)~H2_FLAG_END_HEADERS, 1, 0);
    h2_track_feed(&t, buf, n, 650);
    assert_int_equal(t.block_start_ms, 100);
    n = put_frame(buf, 2, H2_FRAME_CONTINUATION, H2_FLAG_END_HEADERS, 1, 2);
    h2_track_feed(&t, buf, n - 1, 700);
    assert_int_equal(t.block_start_ms, 100);
    h2_track_feed(&t, buf + n - 1, 1, 701);
    assert_int_equal(t.block_start_ms, 0);

    /* The next block starts afresh. */
    n = put_frame(buf, 1, H2_FRAME_HEADERS, 0, 3, 1);
    h2_track_feed(&t, buf, n, 800);
    assert_int_equal(t.block_start_ms, 800);
}

static void test_zero_length_frames(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);
    /* An empty HEADERS with END_HEADERS opens and closes in the same byte. */
    n = put_frame(buf, 0, H2_FRAME_HEADERS, H2_FLAG_END_HEADERS, 1, 0);
    h2_track_feed(&t, buf, n - 1, 20);
    assert_int_equal(t.block_start_ms, 0);
    assert_int_equal(t.fh_len, H2_FRAME_HD - 1);
    h2_track_feed(&t, buf + n - 1, 1, 20);
    assert_int_equal(t.block_start_ms, 0);
    assert_int_equal(t.fh_len, 0);
    /* An empty HEADERS without END_HEADERS, then empty CONTINUATIONs. */
    size_t off = put_frame(buf, 0, H2_FRAME_HEADERS, 0, 3, 0);
    off += put_frame(buf + off, 0, H2_FRAME_CONTINUATION, 0, 3, 0);
    off += put_frame(buf + off, 0, 0x8 /* WINDOW_UPDATE */, 0, 0, 0);
    h2_track_feed(&t, buf, off, 30);
    assert_int_equal(t.block_start_ms, 30);
    n = put_frame(buf, 0, H2_FRAME_CONTINUATION, H2_FLAG_END_HEADERS, 3, 0);
    h2_track_feed(&t, buf, n, 40);
    assert_int_equal(t.block_start_ms, 0);
    assert_int_equal(t.fh_len, 0);
    assert_int_equal(t.payload_left, 0);
}

static void test_push_promise(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);
    n = put_frame(buf, 4, H2_FRAME_PUSH_PROMISE, 0, 1, 4);
    h2_track_feed(&t, buf, n, 50);
    assert_int_equal(t.block_start_ms, 50);
    /* A HEADERS inside an open block does not move its start. */
    n = put_frame(buf, 1, H2_FRAME_HEADERS, 0, 3, 1);
    h2_track_feed(&t, buf, n, 60);
    assert_int_equal(t.block_start_ms, 50);
    n = put_frame(buf, 0, H2_FRAME_PUSH_PROMISE, H2_FLAG_END_HEADERS, 1, 0);
    h2_track_feed(&t, buf, n, 70);
    assert_int_equal(t.block_start_ms, 0);
}

static void test_other_frames(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);
    /* A CONTINUATION with no block open opens none; END_HEADERS on DATA (bit 0x4 is PADDED
     * there) closes nothing, and DATA inside an open block leaves it open. */
    n = put_frame(buf, 2, H2_FRAME_CONTINUATION, 0, 1, 2);
    h2_track_feed(&t, buf, n, 20);
    assert_int_equal(t.block_start_ms, 0);
    n = put_frame(buf, 2, H2_FRAME_HEADERS, 0, 1, 2);
    h2_track_feed(&t, buf, n, 30);
    n = put_frame(buf, 8, H2_FRAME_DATA, H2_FLAG_END_HEADERS, 1, 8);
    h2_track_feed(&t, buf, n, 40);
    assert_int_equal(t.block_start_ms, 30);
    n = put_frame(buf, 0, H2_FRAME_CONTINUATION, H2_FLAG_END_HEADERS, 1, 0);
    h2_track_feed(&t, buf, n, 50);
    assert_int_equal(t.block_start_ms, 0);
}

/* A frame of the largest length the 24-bit field can say (2^24 - 1), fed in pieces. */
static void test_max_length_frames(void **state)
{
    (void)state;
    enum { MAX = 0xffffff, CHUNK = 65536 };
    static uint8_t payload[CHUNK];
    uint8_t buf[64];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 10);

    n = put_frame(buf, MAX, H2_FRAME_HEADERS, H2_FLAG_END_HEADERS, 1, 0);
    h2_track_feed(&t, buf, n, 20);
    assert_int_equal(t.payload_left, MAX);
    assert_int_equal(t.block_start_ms, 20);
    size_t left = MAX;
    while (left > 1) {
        size_t k = left - 1 < CHUNK ? left - 1 : CHUNK;
        h2_track_feed(&t, payload, k, 30);
        left -= k;
    }
    assert_int_equal(t.payload_left, 1);
    assert_int_equal(t.block_start_ms, 20);
    /* The last payload byte and the next frame header in one piece. */
    memcpy(buf, payload, 1);
    n = 1 + put_frame(buf + 1, MAX, H2_FRAME_DATA, 0, 1, 0);
    h2_track_feed(&t, buf, n, 40);
    assert_int_equal(t.block_start_ms, 0);
    assert_int_equal(t.payload_left, MAX);
    assert_int_equal(t.fh[3], H2_FRAME_DATA);
}

static void test_block_time_zero_means_none(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_preface(buf);
    struct h2_track t;
    h2_track_init(&t);
    h2_track_feed(&t, buf, n, 0);
    n = put_frame(buf, 1, H2_FRAME_HEADERS, 0, 1, 1);
    h2_track_feed(&t, buf, n, 0);
    assert_int_equal(t.block_start_ms, 1);
    n = put_frame(buf, 1, H2_FRAME_CONTINUATION, 0, 1, 1);
    h2_track_feed(&t, buf, n, 500);
    assert_int_equal(t.block_start_ms, 1);
}

/* A whole stream in one call and in every two-piece split ends in the same state. */
static void test_any_split_same_state(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = put_preface(buf);
    n += put_frame(buf + n, 4, 0x8, 0, 0, 4);
    n += put_frame(buf + n, 7, H2_FRAME_HEADERS, 0, 1, 7);
    n += put_frame(buf + n, 0, H2_FRAME_CONTINUATION, 0, 1, 0);
    n += put_frame(buf + n, 3, H2_FRAME_CONTINUATION, H2_FLAG_END_HEADERS, 1, 3);
    n += put_frame(buf + n, 10, H2_FRAME_DATA, 0x1, 1, 10);
    n += put_frame(buf + n, 5, H2_FRAME_HEADERS, 0, 3, 5);
    n += put_frame(buf + n, 9, H2_FRAME_CONTINUATION, 0, 3, 9) - 4; /* cut inside */
    struct h2_track whole;
    h2_track_init(&whole);
    h2_track_feed(&whole, buf, n, 9);
    assert_int_equal(whole.preface_done, 1);
    assert_int_equal(whole.block_start_ms, 9);
    assert_int_equal(whole.payload_left, 4);
    for (size_t cut = 0; cut <= n; cut++) {
        struct h2_track t;
        h2_track_init(&t);
        h2_track_feed(&t, buf, cut, 9);
        h2_track_feed(&t, buf + cut, n - cut, 9);
        assert_int_equal(t.magic_left, whole.magic_left);
        assert_int_equal(t.fh_len, whole.fh_len);
        assert_memory_equal(t.fh, whole.fh, H2_FRAME_HD);
        assert_int_equal(t.payload_left, whole.payload_left);
        assert_int_equal(t.preface_done, whole.preface_done);
        assert_int_equal(t.block_start_ms, whole.block_start_ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic_is_24_bytes),
        cmocka_unit_test(test_preface_split_at_every_byte),
        cmocka_unit_test(test_preface_waits_for_a_settings_payload),
        cmocka_unit_test(test_headers_with_end_headers),
        cmocka_unit_test(test_headers_then_continuations),
        cmocka_unit_test(test_zero_length_frames),
        cmocka_unit_test(test_push_promise),
        cmocka_unit_test(test_other_frames),
        cmocka_unit_test(test_max_length_frames),
        cmocka_unit_test(test_block_time_zero_means_none),
        cmocka_unit_test(test_any_split_same_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
