/*
 * tls.h: the certificate and key of a TLS receiver. Reads the PEM certificate chain and the
 * PEM private key into memory once, checks them before anything listens (both files set,
 * readable, PEM, the key matching the leaf certificate) with messages that name the
 * configuration key and the file, and builds the server SSL_CTX the gRPC receiver uses.
 * The HTTP receiver keeps the checked PEM bytes for libmicrohttpd, which does its TLS with
 * GnuTLS. Handshakes and record I/O stay in the receivers.
 */
#ifndef O2D_TLS_H
#define O2D_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* A PEM file larger than this is refused: a chain of a few certificates is a few KiB. */
#define O2D_TLS_PEM_MAX (1024 * 1024)

/* ALPN: select "h2", and refuse a client that offers ALPN without it (gRPC). */
#define O2D_TLS_ALPN_H2 1u
/* Check the files and keep their PEM bytes; build no SSL_CTX (HTTP, for GnuTLS). */
#define O2D_TLS_PEM_ONLY 2u

struct o2d_tls {
    int on;             /* both files were set and passed the checks */
    SSL_CTX *ctx;       /* owned; NULL when off or with O2D_TLS_PEM_ONLY */
    char *cert_pem;     /* with O2D_TLS_PEM_ONLY: the cert_file as read, NUL-terminated; owned */
    char *key_pem;      /* the same for key_file; wiped before it is freed */
    int verify_clients; /* tls.client_ca_file set: clients must present a certificate */
    char *ca_pem;       /* with O2D_TLS_PEM_ONLY: the client_ca_file as read; owned */
};

/*
 * Loads cert_file and key_file. `section` names them in messages, e.g.
 * "receivers.otlp.protocols.grpc.tls". Both empty: O2D_OK with t->on == 0 (plaintext).
 * Otherwise TLS 1.2 at least, the server's cipher order, no compression, no renegotiation,
 * session tickets on. O2D_ERR_CONFIG with err naming the key and the file when only one is
 * set, a file cannot be read, holds no PEM certificate or key (an encrypted key counts as
 * none: there is no passphrase to give), or the key does not belong to the certificate.
 * t is left cleaned up on failure.
 */
int o2d_tls_load(struct o2d_tls *t, const char *section, const char *cert_file,
                 const char *key_file, unsigned flags, char *err, size_t errlen);
/*
 * mTLS (`tls.client_ca_file`, the Collector's key): clients must present a certificate signed
 * by one of the CAs in ca_file. Empty: O2D_OK, nothing changes. After o2d_tls_load(): with an
 * SSL_CTX (gRPC) the handshake itself refuses a client without a valid certificate; with
 * O2D_TLS_PEM_ONLY (HTTP) the PEM bytes are kept in t->ca_pem for libmicrohttpd, and the HTTP
 * receiver checks each connection's certificate before its first request is served.
 * O2D_ERR_CONFIG naming the key when TLS is off, or the file cannot be read or holds no PEM
 * certificate.
 */
int o2d_tls_client_ca(struct o2d_tls *t, const char *section, const char *ca_file, char *err,
                      size_t errlen);
/* Frees what o2d_tls_load() kept; a zeroed or cleaned-up t is a no-op. */
void o2d_tls_cleanup(struct o2d_tls *t);

/* The reason of the last OpenSSL error of this thread ("wrong version number"), or
 * `fallback` when there is none. Clears the thread's error queue. */
const char *o2d_tls_last_error(const char *fallback);

#endif
