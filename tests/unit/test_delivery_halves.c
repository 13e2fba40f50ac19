/*
 * test_delivery_halves.c: the body builder (exporters/delivery/build.c) and the split halves
 * it makes. A half that goes into a body is the body's from the moment emit is called: its
 * owner may settle the body and free the half before emit returns (delivery.c does, when the
 * HTTP client refuses the body at once; or the HTTP client's thread completes it meanwhile).
 * The builder must not look at the half after that. Bodies, splitting and accounting in
 * general are test_delivery.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_buf.h"

#define UNIT_BYTES 100

/* A destination whose items are `count` units of UNIT_BYTES bytes each, the body their
 * concatenation; an item of two units or more splits in two. */
static int units_encode(void *ctx, struct dlv_item *const *items, size_t n, struct o2d_buf *out)
{
    (void)ctx;
    int rv = O2D_OK;
    for (size_t i = 0; i < n && rv == O2D_OK; i++) {
        rv = o2d_buf_append(out, dlv_item_body(items[i]), dlv_item_body_len(items[i]));
    }
    return rv;
}

static struct dlv_item *units_item(uint32_t count, uint8_t fill)
{
    struct dlv_item *it = dlv_item_new((size_t)count * UNIT_BYTES, 0, count);
    if (it != NULL) {
        memset(it->data, fill, it->len);
    }
    return it;
}

static int units_split(const struct dlv_item *it, struct dlv_item **a, struct dlv_item **b)
{
    if (it->count < 2) {
        return O2D_ERR_TOO_LARGE;
    }
    uint32_t ca = it->count / 2;
    struct dlv_item *ha = units_item(ca, it->data[0]);
    struct dlv_item *hb = units_item(it->count - ca, it->data[0]);
    if (ha == NULL || hb == NULL) {
        dlv_item_free(ha);
        dlv_item_free(hb);
        return O2D_ERR_NOMEM;
    }
    *a = ha;
    *b = hb;
    return O2D_OK;
}

static const struct dlv_dest_type units_dest = {
    .name = "units",
    .request = "units",
    .unit = "units",
    .encode = units_encode,
    .split = units_split,
};

struct settled {
    size_t bodies;
    size_t units;
    size_t halves;
};

/* Settles each body at once, as delivery.c does when a body cannot be submitted: the body's
 * hold on each item it carries is dropped. The root is held by the caller (as the sender
 * holds what it builds), so no release may settle it here; a half whose last hold goes is
 * freed, and the builder must not look at it after that (the sanitizer build catches a
 * look). */
static void settle_at_once(void *ctx, struct dlv_body *b)
{
    struct settled *s = ctx;
    s->bodies++;
    s->units += b->units;
    for (size_t i = 0; i < b->n; i++) {
        struct dlv_item *it = b->items[i];
        s->halves += it->parent != NULL;
        assert_null(dlv_item_release(it));
    }
    dlv_body_free(b);
}

static void halves_settled_during_emit(void **state)
{
    (void)state;
    /* 4 units in a body of at most 150 bytes: split in two, and each half in two again. */
    struct dlv_item *root = units_item(4, 'r');
    assert_non_null(root);
    atomic_store(&root->refs, 1); /* the sender's hold */
    struct settled s = {0};
    struct dlv_build b = {
        .type = &units_dest,
        .max_body = 150,
        .compression = DLV_COMPRESS_NONE,
        .emit = settle_at_once,
        .emit_ctx = &s,
    };
    assert_int_equal(dlv_build_bodies(&b, &root, 1), O2D_OK);
    assert_int_equal(b.too_large, 0);
    assert_int_equal(b.failed, 0);
    assert_int_equal(s.bodies, 4);
    assert_int_equal(s.halves, 4);
    assert_int_equal(s.units, 4);
    /* every half gone, and with it its hold: the sender's is the last, and settles it */
    assert_int_equal(atomic_load(&root->refs), 1);
    assert_ptr_equal(dlv_item_release(root), root);
    dlv_item_free(root);
}

static void halves_settled_during_emit_alloc_failures(void **state)
{
    (void)state;
    /* Whatever allocation fails, every unit is settled or counted, once. */
    struct dlv_item *root = units_item(8, 'r');
    assert_non_null(root);
    atomic_store(&root->refs, 1); /* the sender's hold */
    for (long n = 0;; n++) {
        struct settled s = {0};
        struct dlv_build b = {
            .type = &units_dest,
            .max_body = 250,
            .compression = DLV_COMPRESS_NONE,
            .emit = settle_at_once,
            .emit_ctx = &s,
        };
        o2d_alloc_fail_after(n);
        int rv = dlv_build_bodies(&b, &root, 1);
        long fails = o2d_alloc_failures();
        o2d_alloc_fail_after(-1);
        assert_int_equal(s.units + b.failed + b.too_large, 8);
        assert_int_equal(atomic_load(&root->refs), 1);
        if (fails == 0) {
            assert_int_equal(rv, O2D_OK);
            assert_int_equal(s.units, 8);
            break;
        }
        assert_int_equal(rv, O2D_ERR_NOMEM);
        assert_true(n < 1000);
    }
    dlv_item_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(halves_settled_during_emit),
        cmocka_unit_test(halves_settled_during_emit_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
