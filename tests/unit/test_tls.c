/*
 * test_tls.c: o2d_tls_load() against key and certificate files made in-process with
 * OpenSSL in a temporary directory: the checks and their messages (one file set, missing,
 * not PEM, key of another certificate, encrypted key, empty), the PEM_ONLY mode, failing
 * allocations, and the server policy seen by a real client handshake over a BIO pair
 * (ALPN h2 chosen or refused, no ALPN accepted, TLS 1.1 refused, TLS 1.2 with AEAD only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "tls.h"

#define SECTION "receivers.otlp.protocols.grpc.tls"

static char dir[64];
static char path_cert[128], path_key[128], path_other[128], path_enc[128], path_der[128];
static char path_empty[128], path_expired[128], path_chain[128];

static void join(char *out, const char *name)
{
    snprintf(out, 128, "%s/%s", dir, name);
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

/* A self-signed certificate for key, valid from now + from_s for days_s seconds. */
static X509 *new_cert(EVP_PKEY *key, long from_s, long days_s)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), from_s + days_s);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static void write_key(const char *path, EVP_PKEY *k, const EVP_CIPHER *enc)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, enc, enc ? (unsigned char *)"secret" : NULL,
                                          enc ? 6 : 0, NULL, NULL),
                     1);
    fclose(f);
}

static void write_cert(const char *path, X509 *x, int times)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < times; i++) {
        assert_int_equal(PEM_write_X509(f, x), 1);
    }
    fclose(f);
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/o2d-test-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    join(path_cert, "cert.pem");
    join(path_key, "key.pem");
    join(path_other, "other.key");
    join(path_enc, "enc.key");
    join(path_der, "cert.der");
    join(path_empty, "empty.pem");
    join(path_expired, "expired.pem");
    join(path_chain, "chain.pem");
    EVP_PKEY *k = new_key(), *other = new_key();
    X509 *x = new_cert(k, 0, 86400), *old = new_cert(k, -2 * 86400, 86400);
    write_cert(path_cert, x, 1);
    write_cert(path_expired, old, 1);
    write_cert(path_chain, x, 2);
    write_key(path_key, k, NULL);
    write_key(path_other, other, NULL);
    write_key(path_enc, k, EVP_aes_256_cbc());
    FILE *f = fopen(path_der, "wb");
    assert_non_null(f);
    assert_int_equal(i2d_X509_fp(f, x), 1);
    fclose(f);
    f = fopen(path_empty, "w");
    assert_non_null(f);
    fclose(f);
    X509_free(x);
    X509_free(old);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    return 0;
}

static int teardown(void **state)
{
    const char *all[] = {path_cert, path_key,   path_other,   path_enc,
                         path_der,  path_empty, path_expired, path_chain};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        unlink(all[i]);
    }
    rmdir(dir);
    return 0;
}

/* Loads and expects failure with every needle in the message. */
static void expect_error(const char *cert, const char *key, const char *n1, const char *n2)
{
    struct o2d_tls t;
    char err[1024] = "";
    int rv = o2d_tls_load(&t, SECTION, cert, key, O2D_TLS_ALPN_H2, err, sizeof(err));
    assert_int_equal(rv, O2D_ERR_CONFIG);
    assert_int_equal(t.on, 0);
    assert_null(t.ctx);
    if (strstr(err, SECTION) == NULL || strstr(err, n1) == NULL ||
        (n2 != NULL && strstr(err, n2) == NULL)) {
        fail_msg("message '%s' lacks '%s' / '%s'", err, n1, n2 ? n2 : "");
    }
    assert_int_equal(ERR_peek_error(), 0); /* nothing left for the next connection */
}

static void test_plaintext(void **state)
{
    struct o2d_tls t;
    char err[256] = "";
    assert_int_equal(o2d_tls_load(&t, SECTION, "", "", 0, err, sizeof(err)), O2D_OK);
    assert_int_equal(t.on, 0);
    assert_null(t.ctx);
    o2d_tls_cleanup(&t);
    o2d_tls_cleanup(NULL);
}

static void test_errors(void **state)
{
    expect_error(path_cert, "", "cert_file is set but", "key_file is not");
    expect_error("", path_key, "key_file is set but", "cert_file is not");
    expect_error("/nonexistent/c.pem", path_key, "/nonexistent/c.pem", "cannot open");
    expect_error(path_cert, "/nonexistent/k.pem", "key_file '/nonexistent/k.pem'", "cannot open");
    expect_error(path_der, path_key, path_der, "no PEM certificate");
    expect_error(path_key, path_cert, path_key, "no PEM certificate"); /* swapped */
    expect_error(path_cert, path_der, path_der, "no PEM private key");
    expect_error(path_cert, path_other, path_other, "does not match the certificate");
    expect_error(path_cert, path_enc, path_enc, "passphrase");
    expect_error(path_empty, path_key, path_empty, "empty");
    expect_error(dir, path_key, dir, "not a regular file");
}

static void test_ctx_policy(void **state)
{
    struct o2d_tls t;
    char err[256] = "";
    assert_int_equal(
        o2d_tls_load(&t, SECTION, path_chain, path_key, O2D_TLS_ALPN_H2, err, sizeof(err)), O2D_OK);
    assert_int_equal(t.on, 1);
    assert_non_null(t.ctx);
    assert_null(t.cert_pem);
    assert_int_equal(SSL_CTX_get_min_proto_version(t.ctx), TLS1_2_VERSION);
    uint64_t want =
        SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION;
    assert_int_equal(SSL_CTX_get_options(t.ctx) & want, want);
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(t.ctx, &chain), 1);
    assert_int_equal(sk_X509_num(chain), 1); /* the second certificate of chain.pem */
    o2d_tls_cleanup(&t);
    assert_null(t.ctx);
}

static void test_pem_only(void **state)
{
    struct o2d_tls t;
    char err[256] = "";
    assert_int_equal(
        o2d_tls_load(&t, SECTION, path_cert, path_key, O2D_TLS_PEM_ONLY, err, sizeof(err)), O2D_OK);
    assert_int_equal(t.on, 1);
    assert_null(t.ctx);
    assert_non_null(strstr(t.cert_pem, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(t.key_pem, "PRIVATE KEY-----"));
    o2d_tls_cleanup(&t);
    assert_null(t.key_pem);
}

static void test_expired_is_a_warning(void **state)
{
    struct o2d_tls t;
    char err[256] = "";
    assert_int_equal(o2d_tls_load(&t, SECTION, path_expired, path_key, 0, err, sizeof(err)),
                     O2D_OK);
    o2d_tls_cleanup(&t);
}

static void test_alloc_failures(void **state)
{
    for (long n = 0; n < 8; n++) {
        struct o2d_tls t;
        char err[256] = "";
        o2d_alloc_fail_after(n);
        int rv = o2d_tls_load(&t, SECTION, path_cert, path_key, O2D_TLS_PEM_ONLY, err, sizeof(err));
        o2d_alloc_fail_after(-1);
        assert_true(rv == O2D_OK || rv == O2D_ERR_NOMEM);
        assert_int_equal(t.on, rv == O2D_OK);
        o2d_tls_cleanup(&t);
    }
}

/* ---- a client handshake against the context, over a BIO pair ---- */

/* 1: both sides finished; 0: one failed. alpn/alpn_len: what the client offers. */
static int handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, const unsigned char *alpn,
                     unsigned alpn_len, char *selected, size_t selected_len, int *version)
{
    SSL *srv = SSL_new(server_ctx), *cli = SSL_new(client_ctx);
    BIO *b1 = NULL, *b2 = NULL;
    assert_non_null(srv);
    assert_non_null(cli);
    assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
    SSL_set_bio(cli, b1, b1);
    SSL_set_bio(srv, b2, b2);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    if (alpn != NULL) {
        assert_int_equal(SSL_set_alpn_protos(cli, alpn, alpn_len), 0);
    }
    int ok = 0, cdone = 0, sdone = 0;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(cli);
            int e = SSL_get_error(cli, r);
            if (r == 1) {
                cdone = 1;
            } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                goto out;
            }
        }
        if (!sdone) {
            int r = SSL_do_handshake(srv);
            int e = SSL_get_error(srv, r);
            if (r == 1) {
                sdone = 1;
            } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                goto out;
            }
        }
    }
    ok = cdone && sdone;
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(srv, &p, &n);
    snprintf(selected, selected_len, "%.*s", (int)n, p != NULL ? (const char *)p : "");
    *version = SSL_version(srv);
out:
    ERR_clear_error();
    SSL_free(cli);
    SSL_free(srv);
    return ok;
}

static SSL_CTX *client(int max_version)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    if (max_version != 0) {
        SSL_CTX_set_security_level(c, 0);
        SSL_CTX_set_min_proto_version(c, 0);
        SSL_CTX_set_max_proto_version(c, max_version);
        SSL_CTX_set_cipher_list(c, "ALL:@SECLEVEL=0");
    }
    return c;
}

static void test_handshakes(void **state)
{
    struct o2d_tls t;
    char err[256] = "", sel[16];
    int version = 0;
    assert_int_equal(
        o2d_tls_load(&t, SECTION, path_cert, path_key, O2D_TLS_ALPN_H2, err, sizeof(err)), O2D_OK);
    SSL_CTX *any = client(0);
    static const unsigned char h2_h11[] = "\x02h2\x08http/1.1";
    static const unsigned char h11[] = "\x08http/1.1";
    assert_int_equal(handshake(t.ctx, any, h2_h11, sizeof(h2_h11) - 1, sel, sizeof(sel), &version),
                     1);
    assert_string_equal(sel, "h2");
    assert_int_equal(version, TLS1_3_VERSION);
    /* gRPC needs HTTP/2: an HTTP/1.1-only client is refused, one without ALPN is not. */
    assert_int_equal(handshake(t.ctx, any, h11, sizeof(h11) - 1, sel, sizeof(sel), &version), 0);
    assert_int_equal(handshake(t.ctx, any, NULL, 0, sel, sizeof(sel), &version), 1);
    assert_string_equal(sel, "");

    SSL_CTX *old = client(TLS1_1_VERSION);
    assert_int_equal(handshake(t.ctx, old, NULL, 0, sel, sizeof(sel), &version), 0);
    SSL_CTX_free(old);

    SSL_CTX *tls12 = client(TLS1_2_VERSION);
    assert_int_equal(handshake(t.ctx, tls12, NULL, 0, sel, sizeof(sel), &version), 1);
    assert_int_equal(version, TLS1_2_VERSION);
    /* CBC suites are refused (HTTP/2 forbids them; AEAD only). */
    SSL_CTX_set_cipher_list(tls12, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA");
    assert_int_equal(handshake(t.ctx, tls12, NULL, 0, sel, sizeof(sel), &version), 0);
    /* Controls: the same clients succeed once the server allows what they ask for, so the
     * refusals above are the server's policy, not a client that cannot connect at all. */
    SSL_CTX_set_security_level(t.ctx, 0);
    SSL_CTX_set_cipher_list(t.ctx, "ALL:@SECLEVEL=0");
    assert_int_equal(handshake(t.ctx, tls12, NULL, 0, sel, sizeof(sel), &version), 1);
    SSL_CTX_set_min_proto_version(t.ctx, TLS1_VERSION);
    old = client(TLS1_1_VERSION);
    assert_int_equal(handshake(t.ctx, old, NULL, 0, sel, sizeof(sel), &version), 1);
    assert_int_equal(version, TLS1_1_VERSION);
    SSL_CTX_free(old);
    SSL_CTX_free(tls12);
    SSL_CTX_free(any);
    o2d_tls_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ctx_policy),
        cmocka_unit_test(test_pem_only),
        cmocka_unit_test(test_expired_is_a_warning),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_handshakes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
