/*
 * tls.c: loading and checking a receiver's certificate and key, and its OpenSSL server
 * context.
 *
 * The files are read once into memory and parsed from there, so what was checked is what
 * is served (the HTTP receiver hands the same bytes to GnuTLS). Every check runs at start,
 * where an error stops otel2dd with one log line; nothing here runs per connection.
 *
 * Choices, each a common server default made explicit: TLS 1.2 and 1.3 only; for TLS 1.2
 * only ECDHE key exchange with AEAD ciphers, which is also what HTTP/2 allows (RFC 9113
 * 9.2.2); the server's cipher order; no compression (CRIME); no renegotiation, from either
 * side; stateless session tickets for resumption. Left out: client certificates, a
 * passphrase for the key, reloading the files while running.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_log.h"
#include "tls.h"

/* TLS 1.2 suites; TLS 1.3 keeps OpenSSL's (all AEAD, all forward secret). */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

const char *o2d_tls_last_error(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r != NULL ? r : fallback;
}

/* Never asked for a passphrase: without this callback OpenSSL would prompt on the tty. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* Reads path whole into a NUL-terminated buffer the caller frees. */
static int read_file(const char *section, const char *key, const char *path, char **out,
                     size_t *outlen, char *err, size_t errlen)
{
    int rv = O2D_ERR_CONFIG;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s.%s '%s': cannot open: %s", section, key, path, strerror(errno));
        return rv;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s.%s '%s': not a regular file", section, key, path);
        goto out;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "%s.%s '%s': the file is empty", section, key, path);
        goto out;
    }
    if (st.st_size > O2D_TLS_PEM_MAX) {
        snprintf(err, errlen, "%s.%s '%s': larger than %d bytes, not a PEM certificate or key",
                 section, key, path, O2D_TLS_PEM_MAX);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    buf = o2d_malloc(n + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s.%s '%s': out of memory", section, key, path);
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    if (fread(buf, 1, n, f) != n) {
        snprintf(err, errlen, "%s.%s '%s': cannot read: %s", section, key, path,
                 ferror(f) ? strerror(errno) : "the file shrank");
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    buf = NULL;
    rv = O2D_OK;
out:
    o2d_free(buf);
    fclose(f);
    return rv;
}

/* The end of a PEM stream reads as "no start line": that one is not an error. */
static int pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return 1;
    }
    return 0;
}

/* Loads the leaf and the rest of the chain from cert_pem into ctx. */
static int use_chain(SSL_CTX *ctx, const char *where, const char *pem, size_t len, char *err,
                     size_t errlen)
{
    int rv = O2D_ERR_CONFIG;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = NULL;
    if (b == NULL) {
        snprintf(err, errlen, "%s: out of memory", where);
        return O2D_ERR_NOMEM;
    }
    x = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    if (x == NULL) {
        snprintf(err, errlen,
                 "%s: no PEM certificate in the file (%s); expected a "
                 "'-----BEGIN CERTIFICATE-----' block",
                 where, o2d_tls_last_error("unreadable"));
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        snprintf(err, errlen, "%s: the certificate cannot be used: %s", where,
                 o2d_tls_last_error("unknown error"));
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        /* Not fatal: the operator may be about to replace it, clients will say so too. */
        o2d_logf(O2D_LOG_WARN, "%s: the certificate has expired", where);
    }
    X509_free(x);
    x = NULL;
    for (;;) {
        x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (x == NULL) {
            if (!pem_at_end()) {
                snprintf(err, errlen, "%s: a certificate after the first cannot be read: %s", where,
                         o2d_tls_last_error("unreadable"));
                goto out;
            }
            break;
        }
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
            snprintf(err, errlen, "%s: cannot add a chain certificate: %s", where,
                     o2d_tls_last_error("unknown error"));
            goto out;
        }
        x = NULL; /* the context owns it */
    }
    rv = O2D_OK;
out:
    X509_free(x);
    BIO_free(b);
    return rv;
}

static int read_key(EVP_PKEY **out, const char *where, const char *pem, size_t len, char *err,
                    size_t errlen)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL) {
        snprintf(err, errlen, "%s: out of memory", where);
        return O2D_ERR_NOMEM;
    }
    *out = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (*out == NULL) {
        snprintf(err, errlen,
                 "%s: no PEM private key in the file (%s); expected an unencrypted "
                 "'-----BEGIN PRIVATE KEY-----' block (otel2dd takes no passphrase)",
                 where, o2d_tls_last_error("unreadable"));
        return O2D_ERR_CONFIG;
    }
    return O2D_OK;
}

/*
 * gRPC runs on HTTP/2 only. A client that offers ALPN without "h2" (an HTTP/1.1 client) is
 * refused in the handshake with no_application_protocol, which it reports clearly, instead
 * of failing later on the HTTP/2 preface. A client that offers no ALPN at all is served
 * HTTP/2 with prior knowledge, as on the plaintext port.
 */
static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) {
            break;
        }
        if (n == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *new_ctx(unsigned flags)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        return NULL;
    }
    static const unsigned char sid_ctx[] = "otel2dd";
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Writes return once a record is out (nghttp2's output stays in our buffer, which moves
     * and grows between a blocked write and its retry). Idle connections give their record
     * buffers back: 500 idle gRPC connections took 49 KiB each without, 34 KiB with, at no
     * measurable cost in CPU per span. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (flags & O2D_TLS_ALPN_H2) {
        SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    }
    return ctx;
}

static void wipe_free(char *p, size_t n)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        o2d_free(p);
    }
}

int o2d_tls_load(struct o2d_tls *t, const char *section, const char *cert_file,
                 const char *key_file, unsigned flags, char *err, size_t errlen)
{
    int rv = O2D_ERR_CONFIG;
    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    SSL_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *leaf = NULL;
    char cwhere[400], kwhere[400];
    memset(t, 0, sizeof(*t));
    if (cert_file[0] == '\0' && key_file[0] == '\0') {
        return O2D_OK;
    }
    if (cert_file[0] == '\0' || key_file[0] == '\0') {
        snprintf(err, errlen,
                 "%s.%s is set but %s.%s is not: set both for TLS, or neither for plaintext",
                 section, cert_file[0] ? "cert_file" : "key_file", section,
                 cert_file[0] ? "key_file" : "cert_file");
        return O2D_ERR_CONFIG;
    }
    snprintf(cwhere, sizeof(cwhere), "%s.cert_file '%s'", section, cert_file);
    snprintf(kwhere, sizeof(kwhere), "%s.key_file '%s'", section, key_file);
    ERR_clear_error();
    if ((rv = read_file(section, "cert_file", cert_file, &cert, &cert_len, err, errlen)) !=
            O2D_OK ||
        (rv = read_file(section, "key_file", key_file, &key, &key_len, err, errlen)) != O2D_OK) {
        goto out;
    }
    /* With O2D_TLS_PEM_ONLY the context only serves the checks, and is freed below. */
    ctx = new_ctx(flags);
    if (ctx == NULL) {
        snprintf(err, errlen, "%s: cannot set up OpenSSL: %s", section,
                 o2d_tls_last_error("unknown error"));
        rv = O2D_ERR_INTERNAL;
        goto out;
    }
    if ((rv = use_chain(ctx, cwhere, cert, cert_len, err, errlen)) != O2D_OK ||
        (rv = read_key(&pkey, kwhere, key, key_len, err, errlen)) != O2D_OK) {
        goto out;
    }
    rv = O2D_ERR_CONFIG;
    leaf = SSL_CTX_get0_certificate(ctx);
    /* X509_check_private_key() compares the public halves, whatever the key type. */
    if (leaf == NULL || X509_check_private_key(leaf, pkey) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s does not match the certificate in %s", kwhere, cwhere);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s cannot be used with %s: %s", kwhere, cwhere,
                 o2d_tls_last_error("unknown error"));
        goto out;
    }
    t->on = 1;
    if (flags & O2D_TLS_PEM_ONLY) {
        t->cert_pem = cert;
        t->key_pem = key;
        cert = NULL;
        key = NULL;
    } else {
        t->ctx = ctx;
        ctx = NULL;
    }
    rv = O2D_OK;
out:
    EVP_PKEY_free(pkey);
    SSL_CTX_free(ctx);
    o2d_free(cert);
    wipe_free(key, key_len);
    ERR_clear_error();
    return rv;
}

int o2d_tls_client_ca(struct o2d_tls *t, const char *section, const char *ca_file, char *err,
                      size_t errlen)
{
    if (ca_file == NULL || ca_file[0] == '\0') {
        return O2D_OK;
    }
    if (!t->on) {
        snprintf(err, errlen,
                 "%s.client_ca_file is set but TLS is off: set cert_file and key_file too",
                 section);
        return O2D_ERR_CONFIG;
    }
    char *pem = NULL;
    size_t len = 0;
    int rv = read_file(section, "client_ca_file", ca_file, &pem, &len, err, errlen);
    if (rv != O2D_OK) {
        return rv;
    }
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    int n = 0;
    rv = O2D_ERR_CONFIG;
    X509 *x;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        int ok = 1;
        if (t->ctx != NULL) {
            /* The store trusts it; the CertificateRequest names it. */
            ok = X509_STORE_add_cert(SSL_CTX_get_cert_store(t->ctx), x) == 1 &&
                 SSL_CTX_add_client_CA(t->ctx, x) == 1;
        }
        X509_free(x);
        if (!ok) {
            snprintf(err, errlen, "%s.client_ca_file '%s': %s", section, ca_file,
                     o2d_tls_last_error("cannot use a certificate"));
            goto out;
        }
        n++;
    }
    if (n == 0 || !pem_at_end()) {
        snprintf(err, errlen, "%s.client_ca_file '%s': %s", section, ca_file,
                 n == 0 ? "holds no PEM certificate" : o2d_tls_last_error("not PEM"));
        goto out;
    }
    if (t->ctx != NULL) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        t->ca_pem = pem;
        pem = NULL;
    }
    t->verify_clients = 1;
    rv = O2D_OK;
out:
    BIO_free(bio);
    o2d_free(pem);
    ERR_clear_error();
    return rv;
}

void o2d_tls_cleanup(struct o2d_tls *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    o2d_free(t->ca_pem);
    o2d_free(t->cert_pem);
    if (t->key_pem != NULL) {
        wipe_free(t->key_pem, strlen(t->key_pem));
    }
    memset(t, 0, sizeof(*t));
}
