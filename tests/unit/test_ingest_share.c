/*
 * test_ingest_share.c: the receivers' memory accounting in ingest.c: the per-connection share
 * rule, the steps by which a body's reservation grows, and reserving through shares against
 * one budget (a share and the budget each refuse with their own reason, and what is released
 * comes back to both). No receiver and no pipeline: ingest_new borrows a NULL pipeline that
 * these functions never touch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ingest.h"
#include "o2d.h"

#define MIB ((size_t)1 << 20)

static void share_cap_rule(void **state)
{
    (void)state;
    /* The defaults: a gRPC connection gets 1/16 of 256 MiB, room for four 4 MiB messages; an
     * HTTP connection one 20 MiB request, which is more than 1/16. */
    assert_int_equal(ingest_share_cap(256 * MIB, 4 * MIB), 16 * MIB);
    assert_int_equal(ingest_share_cap(256 * MIB, 20 * MIB), 20 * MIB);
    /* Never more than the budget, even when one request is larger. */
    assert_int_equal(ingest_share_cap(1 * MIB, 20 * MIB), 1 * MIB);
    assert_int_equal(ingest_share_cap(0, 4 * MIB), 0);
    /* A request limit of 0 still leaves the fraction. */
    assert_int_equal(ingest_share_cap(64 * MIB, 0), 4 * MIB);
}

static void grow_steps(void **state)
{
    (void)state;
    /* Room already held: unchanged. */
    assert_int_equal(ingest_grow_to(100000, 100000, 4 * MIB), 100000);
    /* The first step is what arrived: one byte sent holds one byte. */
    assert_int_equal(ingest_grow_to(0, 1, 4 * MIB), 1);
    assert_int_equal(ingest_grow_to(0, 16384, 4 * MIB), 16384);
    /* Then it doubles, or takes what is needed when that is more. */
    assert_int_equal(ingest_grow_to(16384, 16385, 4 * MIB), 32768);
    assert_int_equal(ingest_grow_to(16384, 3 * MIB, 4 * MIB), 3 * MIB);
    /* Capped at the limit. */
    assert_int_equal(ingest_grow_to(3 * MIB, 3 * MIB + 1, 4 * MIB), 4 * MIB);
    /* No overflow when doubling. */
    assert_int_equal(ingest_grow_to(SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2, SIZE_MAX), SIZE_MAX);
    /* Growing a body one piece at a time holds at most twice what arrived, never more than
     * its limit, and takes few steps, even from 1-byte pieces. */
    size_t limit = 3 * MIB + 12345, held = 0, steps = 0;
    for (size_t have = 0; have < limit;) {
        size_t piece = have < 100 ? 1 : have + 16384 < limit ? 16384 : limit - have;
        size_t next = ingest_grow_to(held, have + piece, limit);
        steps += next != held;
        held = next;
        have += piece;
        assert_true(held >= have);
        assert_true(held <= limit);
        assert_true(held <= 2 * have);
    }
    assert_int_equal(held, limit);
    assert_true(steps <= 23);
}

static void shares_against_one_budget(void **state)
{
    (void)state;
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, NULL, NULL, 64 * MIB), O2D_OK);
    struct ingest_share a, b, c;
    ingest_share_init(ing, &a, 1 * MIB); /* cap 4 MiB: 1/16 of 64 MiB */
    ingest_share_init(ing, &b, 32 * MIB);
    ingest_share_init(ing, &c, 32 * MIB);
    assert_int_equal(a.cap, 4 * MIB);
    assert_int_equal(b.cap, 32 * MIB);
    const char *why = NULL;

    /* A share refuses past its cap, with its own reason, and nothing is taken. */
    assert_int_equal(ingest_share_reserve(ing, &a, 3 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_share_admit(ing, &a, 1 * MIB, &why), O2D_OK);
    why = NULL;
    assert_int_equal(ingest_share_admit(ing, &a, 1 * MIB + 1, &why), O2D_ERR_BUSY);
    assert_non_null(why);
    assert_non_null(strstr(why, "share"));
    why = NULL;
    assert_int_equal(ingest_share_reserve(ing, &a, 1 * MIB + 1, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "share"));
    assert_int_equal(a.held, 3 * MIB);

    /* Other connections fill the budget: 3 + 32 + 29 = 64 MiB. */
    assert_int_equal(ingest_share_reserve(ing, &b, 32 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_share_reserve(ing, &c, 29 * MIB, &why), O2D_OK);
    /* c's share has room, the budget none: the budget's reason. */
    why = NULL;
    assert_int_equal(ingest_share_admit(ing, &c, 1, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "memory limit reached"));
    why = NULL;
    assert_int_equal(ingest_share_reserve(ing, &c, 1, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "memory limit reached"));
    assert_int_equal(c.held, 29 * MIB);

    /* Releasing gives back to both: the share and the budget. */
    ingest_share_release(ing, &b, 32 * MIB);
    assert_int_equal(b.held, 0);
    assert_int_equal(ingest_share_reserve(ing, &c, 3 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_share_admit(ing, &b, 29 * MIB, &why), O2D_OK);
    assert_int_equal(ingest_share_admit(ing, &b, 29 * MIB + 1, &why), O2D_ERR_BUSY);

    ingest_share_release(ing, &a, 3 * MIB);
    ingest_share_release(ing, &c, 32 * MIB);
    struct ingest_share whole;
    ingest_share_init(ing, &whole, 64 * MIB);
    assert_int_equal(ingest_share_reserve(ing, &whole, 64 * MIB, &why), O2D_OK);
    ingest_share_release(ing, &whole, 64 * MIB);
    ingest_free(ing);
}

/* A body the whole budget could never hold is too large, not "retry later": a budget smaller
 * than the receiver's size limit would otherwise refuse it as busy forever. */
static void larger_than_the_budget(void **state)
{
    (void)state;
    struct ingest *ing = NULL;
    assert_int_equal(ingest_new(&ing, NULL, NULL, 8 * MIB), O2D_OK);
    struct ingest_share sh;
    ingest_share_init(ing, &sh, 20 * MIB); /* an HTTP size limit above the budget */
    assert_int_equal(sh.cap, 8 * MIB);
    const char *why = NULL;
    assert_int_equal(ingest_share_admit(ing, &sh, 8 * MIB + 1, &why), O2D_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "memory limit"));
    assert_int_equal(ingest_share_admit(ing, &sh, 8 * MIB, &why), O2D_OK);
    /* Grown piece by piece (a chunked body), it turns too large when it passes the budget. */
    assert_int_equal(ingest_share_reserve(ing, &sh, 6 * MIB, &why), O2D_OK);
    why = NULL;
    assert_int_equal(ingest_share_reserve(ing, &sh, 2 * MIB + 1, &why), O2D_ERR_TOO_LARGE);
    assert_non_null(why);
    assert_int_equal(sh.held, 6 * MIB);
    /* While others hold the budget, a body that fits it whole is only "not now". */
    struct ingest_share other;
    ingest_share_init(ing, &other, 20 * MIB);
    why = NULL;
    assert_int_equal(ingest_share_admit(ing, &other, 4 * MIB, &why), O2D_ERR_BUSY);
    assert_non_null(strstr(why, "memory limit reached"));
    ingest_share_release(ing, &sh, 6 * MIB);
    assert_int_equal(ingest_share_admit(ing, &other, 4 * MIB, &why), O2D_OK);
    ingest_free(ing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(share_cap_rule),
        cmocka_unit_test(grow_steps),
        cmocka_unit_test(shares_against_one_budget),
        cmocka_unit_test(larger_than_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
