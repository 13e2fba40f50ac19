/*
 * http_server.c: the OTLP/HTTP receiver on libmicrohttpd (MHD), HTTP/1.1 with keep-alive.
 *
 * MHD calls on_request() once when the headers are in, once per piece of body, and once
 * when the body is complete. The first call decides everything that needs no body (path,
 * method, content type, encoding, declared size, room in the memory budget) and answers at
 * once when it can, so a refused body is never read. A declared Content-Length reserves
 * nothing: the body calls reserve as bytes arrive, in growing steps (ingest_grow_to), through
 * the request's ingest_share (HTTP/1.1 carries one request at a time, so the request's share
 * is its connection's), and buffer into an o2d_buf that never grows past what is reserved.
 * An upload cut off midway gives its reservation back in on_completed(). The last call hands
 * the body to ingest_request() and writes the answer: status and Retry-After from
 * status_map.c, the body from ingest_encode_response() / ingest_encode_status() in the
 * request's encoding.
 *
 * Threads: one MHD daemon per worker (one per online CPU, at most HTTP_MAX_THREADS), each
 * with its own internal epoll thread and no listening socket, and one acceptor (acceptor.c)
 * that accepts every connection and gives it to the daemon with the fewest open connections
 * through MHD_add_connection(). MHD's own thread pool let one thread accept a whole burst of
 * connections, and the requests of a connection are decoded on the thread that serves it.
 *
 * TLS: with tls.cert_file and tls.key_file set, every daemon is an MHD HTTPS daemon (GnuTLS,
 * which is how Debian builds libmicrohttpd), so the sockets the acceptor hands over with
 * MHD_add_connection() are wrapped in TLS by the daemon that takes them. The files are read
 * and checked once by tls.c (OpenSSL), and the same bytes are given to every daemon. The
 * handshake counts as the connection's first bytes: idle_timeout bounds it.
 *
 * Slots are earned. MHD's connection timeout is an idle timeout, reset by every byte, so a
 * client sending its head one byte a second would hold its slot forever; and MHD's connection
 * limit refuses newcomers while idle connections sit on every slot. So each connection has a
 * record (struct http_conn) from MHD's STARTED notice to its CLOSED notice, kept on the
 * worker's idle list, oldest first, while no request is in progress (before the first head
 * is complete, and between an answer and the next head). Two things act on that list from
 * the acceptor thread: its tick() closes connections whose head is late (read_header_timeout
 * from the accept; after a keep-alive answer, idle_timeout plus read_header_timeout, the
 * client being free to wait idle_timeout before it starts), and its evict() closes the
 * longest-idle connection with nothing unread when max_connections is reached.
 *
 * How a connection is closed from outside MHD's thread: shutdown(fd, SHUT_RDWR) on its
 * socket, under the worker's mutex. MHD's own knob does not fit: a timeout set with
 * MHD_set_connection_option(MHD_CONNECTION_OPTION_TIMEOUT) still counts from the last byte
 * received, and the daemon's thread only looks at it once its current epoll wait ends; and
 * a connection handle used from another thread may already be freed. shutdown() is a plain
 * system call on a socket the kernel keeps consistent across threads; the daemon's
 * epoll then reports the connection readable at end of file, and MHD closes it in its own
 * loop, sending CLOSED as for any client that hung up. The descriptor cannot have been
 * closed and reused meanwhile: MHD sends CLOSED before it closes the socket, and the CLOSED
 * handler takes the same mutex to unlink the record.
 *
 * Left to others: inflating, decoding, validating and counting (ingest), the wire statuses
 * (status_map).
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "acceptor.h"
#include "body_pool.h"
#include "o2d_time.h"
#include "http_server.h"
#include "mhd_small.h"
#include "ingest.h"
#include "net.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_defer.h"
#include "o2d_buf.h"
#include "o2d_log.h"
#include "status_map.h"
#include "sync_waiter.h"
#include "tls.h"

#define HTTP_MAX_THREADS ACCEPTOR_MAX_WORKERS
#define HTTP_BACKLOG     4096
/* Per connection: request line, headers and MHD's read buffer. Headers past it get 431. */
#define HTTP_CONN_MEMORY (32 * 1024)
/* Response bodies: a google.rpc.Status or an Export*ServiceResponse, both small. */
#define HTTP_RESPONSE_MAX (64 * 1024)
/* How long shutdown sleeps between looks at the requests still in flight. */
#define HTTP_DRAIN_POLL_MS 5

/* GnuTLS's defaults limited to what tls.c allows on the gRPC port: TLS 1.2 and 1.3, AEAD
 * ciphers, ECDHE key exchange for TLS 1.2, the server's order. */
#define HTTP_TLS_PRIORITIES                                                                        \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"            \
    "+CHACHA20-POLY1305:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON     "application/json"

/* One connection of a daemon, from STARTED to CLOSED; linked on the idle list while no
 * request is in progress. Fields under the worker's mutex. */
struct http_conn {
    struct http_conn *prev, *next;
    struct http_worker *w;
    int fd;
    int idle;    /* on the idle list */
    int closing; /* shut down by us: MHD closes it in its loop */
    int64_t idle_since_ms;
    int64_t head_deadline_ms;
    int client_cert; /* mTLS: 0 not checked yet, 1 valid, -1 missing or invalid */
};

/* Request bodies a daemon keeps for its next requests (body_pool.h, under the worker's
 * mutex): each at most HTTP_SPARE_MAX bytes of capacity, HTTP_SPARE_BYTES in all, freed by
 * the acceptor's tick after HTTP_SPARE_IDLE_MS without use. */
#define HTTP_SPARE_MAX     (1024 * 1024)
#define HTTP_SPARE_BYTES   (4 * 1024 * 1024)
#define HTTP_SPARE_IDLE_MS 2000

/* One MHD daemon and its thread. */
struct http_worker {
    struct http_server *srv;
    int index;
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu;
    int mu_ok;
    struct http_conn *idle_head, *idle_tail; /* oldest first */
    /* Request bodies kept for the next requests of this daemon (HTTP_SPARE_* above). */
    struct body_pool spare;
};

/* The socket context of a connection whose record could not be allocated: its slot is
 * released like the others, but it is neither timed nor evicted. */
static char untracked;

struct http_server {
    struct o2d_http_config cfg; /* copied */
    struct ingest *ing;         /* borrowed */
    struct o2d_tls tls;         /* PEM bytes the daemons point to until they stop */
    int fd;                     /* the listening socket, -1 once closed */
    uint16_t port;
    int nworkers;
    int running; /* between http_server_start() and the daemons' stop */
    struct http_worker workers[HTTP_MAX_THREADS];
    struct acceptor *acc;
    atomic_int draining;
    atomic_long inflight; /* requests that got a context and are not completed yet */
    /* With a disk queue that syncs: the thread that runs parked requests' syncs, and how many
     * are parked (their connections suspended; the daemons stop only once none is). */
    struct sync_waiter *waiter;
    atomic_long parked;
    /* MHD_add_connection() refused a socket: acceptor thread only. */
    uint64_t add_failures;
    /* At most one warning a second about sockets MHD could not take. */
    struct o2d_log_limiter add_fail_log;
};

/* One request, from its headers to MHD's completion callback. */
struct http_req {
    struct http_server *srv;
    enum otlp_signal sig;
    enum otlp_encoding enc;
    enum o2d_compression comp;
    int failed;         /* set while reading the body; answered once the body has ended */
    const char *reason; /* static, with failed */
    size_t limit;       /* the body's size: Content-Length, or max_request_body_size */
    int chunked;
    uint64_t received; /* body bytes MHD handed over, kept or not */
    size_t reserved;   /* bytes held through share; body.max follows it */
    struct ingest_share share;
    int64_t deadline_ms;
    int tenant; /* the bearer token's tenant, -1 for none */
    struct o2d_buf body;
    struct http_worker *w; /* the daemon's, for its spare bodies; NULL when not tracked */
    /* Parked until its syncs ran (its connection suspended): 1; back, to be answered: 2. */
    int parked;
    struct MHD_Connection *conn;
    struct ingest_result res;
    struct sync_wait wait;
};

/* ---- connection records: head deadlines and eviction ---- */

/* Under w->mu. */
static void conn_idle(struct http_conn *hc, int64_t now, int64_t deadline)
{
    struct http_worker *w = hc->w;
    if (hc->idle || hc->closing) {
        return;
    }
    hc->idle = 1;
    hc->idle_since_ms = now;
    hc->head_deadline_ms = deadline;
    hc->next = NULL;
    hc->prev = w->idle_tail;
    if (w->idle_tail != NULL) {
        w->idle_tail->next = hc;
    } else {
        w->idle_head = hc;
    }
    w->idle_tail = hc;
}

/* Under w->mu. */
static void conn_busy(struct http_conn *hc)
{
    struct http_worker *w = hc->w;
    if (!hc->idle) {
        return;
    }
    hc->idle = 0;
    if (hc->prev != NULL) {
        hc->prev->next = hc->next;
    } else {
        w->idle_head = hc->next;
    }
    if (hc->next != NULL) {
        hc->next->prev = hc->prev;
    } else {
        w->idle_tail = hc->prev;
    }
    hc->prev = hc->next = NULL;
}

/* Under w->mu: the daemon's thread will see end of file and close the connection. */
static void conn_shut(struct http_conn *hc)
{
    conn_busy(hc);
    hc->closing = 1;
    shutdown(hc->fd, SHUT_RDWR);
}

/* The record of conn, NULL when it has none (not allocated). Daemon thread. */
static struct http_conn *conn_record(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || ci->socket_context == NULL) {
        return NULL;
    }
    return ci->socket_context == &untracked ? NULL : ci->socket_context;
}

/* A request's head is complete (MHD's first call): no longer idle. Daemon thread. */
static void conn_request_began(struct MHD_Connection *conn)
{
    struct http_conn *hc = conn_record(conn);
    if (hc != NULL) {
        pthread_mutex_lock(&hc->w->mu);
        conn_busy(hc);
        pthread_mutex_unlock(&hc->w->mu);
    }
}

/* The request is over: idle until the next head, which the client may start after up to
 * idle_timeout (MHD's own idle limit) and must then finish within read_header_timeout. */
static void conn_request_ended(struct http_server *s, struct MHD_Connection *conn)
{
    struct http_conn *hc = conn_record(conn);
    if (hc == NULL) {
        return;
    }
    int64_t now = o2d_now_ms();
    int64_t deadline = s->cfg.read_header_timeout_ms > 0
                           ? now + s->cfg.idle_timeout_ms + s->cfg.read_header_timeout_ms
                           : INT64_MAX;
    pthread_mutex_lock(&hc->w->mu);
    conn_idle(hc, now, deadline);
    pthread_mutex_unlock(&hc->w->mu);
}

static const struct {
    const char *path;
    enum otlp_signal sig;
} routes[] = {
    {"/v1/traces", OTLP_SIGNAL_TRACES},
    {"/v1/logs", OTLP_SIGNAL_LOGS},
    {"/v1/metrics", OTLP_SIGNAL_METRICS},
};

static int find_route(const char *url, enum otlp_signal *sig)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0) {
            *sig = routes[i].sig;
            return 1;
        }
    }
    return 0;
}

/* The part of s before `stop` (a set of bytes), without surrounding blanks. */
static const char *token(const char *s, const char *stop, size_t *len)
{
    s += strspn(s, " \t");
    size_t n = strcspn(s, stop);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    *len = n;
    return s;
}

static int token_is(const char *t, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(t, want, n) == 0;
}

/* Content-Type: the media type decides; parameters such as charset are ignored. */
static int parse_content_type(const char *v, enum otlp_encoding *enc)
{
    if (v == NULL) {
        return O2D_ERR_UNSUPPORTED;
    }
    size_t n;
    const char *t = token(v, ";", &n);
    if (token_is(t, n, CT_PROTOBUF)) {
        *enc = OTLP_ENC_PROTOBUF;
        return O2D_OK;
    }
    if (token_is(t, n, CT_JSON)) {
        *enc = OTLP_ENC_JSON;
        return O2D_OK;
    }
    return O2D_ERR_UNSUPPORTED;
}

static int parse_content_encoding(const char *v, enum o2d_compression *comp)
{
    size_t n = 0;
    const char *t = v == NULL ? "" : token(v, "", &n);
    if (n == 0 || token_is(t, n, "identity")) {
        *comp = O2D_COMP_NONE;
        return O2D_OK;
    }
    if (token_is(t, n, "gzip")) {
        *comp = O2D_COMP_GZIP;
        return O2D_OK;
    }
    return O2D_ERR_UNSUPPORTED;
}

/* A client's header value made safe for a message: printable ASCII, bounded. */
static void quote_value(char *dst, size_t dstlen, const char *v)
{
    size_t i = 0;
    for (; v[i] != '\0' && i + 4 < dstlen; i++) {
        unsigned char c = (unsigned char)v[i];
        dst[i] = (c >= 0x20 && c < 0x7f && c != '\'' && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (v[i] != '\0' && i >= 3) {
        memcpy(dst + i - 3, "...", 3);
    }
    dst[i] = '\0';
}

static int parse_length(const char *v, uint64_t *len)
{
    uint64_t n = 0;
    if (v == NULL || *v == '\0') {
        return O2D_ERR_INVALID;
    }
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10) {
            return O2D_ERR_INVALID;
        }
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *len = n;
    return O2D_OK;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static struct o2d_log_limiter refusal_log_limit;

static void log_refusal(const char *url, unsigned int code, const char *reason)
{
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_DEBUG, "request refused", &refusal_log_limit, reason,
                          o2d_now_ms());
    if (!l.on) {
        o2d_log_end(&l);
        return;
    }
    o2d_log_cstr(&l, "server", "http");
    o2d_log_cstr(&l, "path", url);
    o2d_log_int(&l, "http_status", code);
    o2d_log_cstr(&l, "reason", reason);
    o2d_log_end(&l);
}

/* Queues `body` (taken; the buffer is left empty) with the headers every answer carries. */
static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned int code,
                                 enum otlp_encoding enc, struct o2d_buf *body, int retry_after_s,
                                 const char *allow, int close_after)
{
    size_t len = 0;
    uint8_t *data = o2d_buf_take(body, &len);
    struct MHD_Response *r;
    if (data == NULL) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer_with_free_callback(len, data, o2d_free);
        if (r == NULL) {
            o2d_free(data);
        }
    }
    if (r == NULL) {
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                 enc == OTLP_ENC_JSON ? CT_JSON : CT_PROTOBUF);
    if (ok == MHD_YES && retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry_after_s);
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (ok == MHD_YES && allow != NULL) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (ok == MHD_YES && close_after) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    if (ok == MHD_YES && code == MHD_HTTP_UNAUTHORIZED) {
        /* RFC 6750 3: a 401 names the scheme the client should use. */
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
    if (ok == MHD_YES) {
        ok = MHD_queue_response(conn, code, r);
    }
    MHD_destroy_response(r);
    return ok;
}

/* An error answer: a google.rpc.Status in the request's encoding. */
static enum MHD_Result send_error(struct MHD_Connection *conn, const char *url, unsigned int code,
                                  enum grpc_code grpc, const char *reason, int retry_after_s,
                                  enum otlp_encoding enc, const char *allow, int close_after)
{
    log_refusal(url, code, reason);
    struct o2d_buf b;
    o2d_buf_init(&b, HTTP_RESPONSE_MAX);
    if (ingest_encode_status(grpc, reason, retry_after_s, enc, &b) != O2D_OK) {
        /* The status line and headers still tell the client what happened. */
        o2d_buf_reset(&b);
    }
    enum MHD_Result ok = send_body(conn, code, enc, &b, retry_after_s, allow, close_after);
    o2d_buf_cleanup(&b);
    return ok;
}

/* Counts a refusal decided here (not by ingest_request, which counts its own). */
static void count_refusal(struct ingest *ing, const char *url, enum ingest_refusal why)
{
    enum otlp_signal sig;
    ingest_count_refusal(ing, O2D_TRANSPORT_HTTP, find_route(url, &sig) ? (int)sig : -1, why);
}

/* `count_in`: the ingest to count the refusal in; NULL when ingest_request already did. */
static enum MHD_Result send_status(struct ingest *count_in, struct MHD_Connection *conn,
                                   const char *url, int status, const char *reason,
                                   enum otlp_encoding enc, int close_after)
{
    if (count_in != NULL) {
        count_refusal(count_in, url, ingest_refusal_of(status));
    }
    if (reason == NULL) {
        reason = o2d_strerror(status);
    }
    return send_error(conn, url, (unsigned int)o2d_status_to_http(status),
                      o2d_status_to_grpc(status), reason, o2d_status_retry_after(status), enc, NULL,
                      close_after);
}

static void req_drop_body(struct http_req *req)
{
    struct http_worker *w = req->w;
    if (w != NULL && req->body.data != NULL && req->body.cap <= HTTP_SPARE_MAX) {
        int64_t now = o2d_now_ms();
        pthread_mutex_lock(&w->mu);
        body_pool_give(&w->spare, &req->body, now); /* for the next request */
        pthread_mutex_unlock(&w->mu);
    }
    o2d_buf_cleanup(&req->body);
    if (req->reserved > 0) {
        ingest_share_release(req->srv->ing, &req->share, req->reserved);
        req->reserved = 0;
    }
}

static void req_free(struct http_req *req)
{
    req_drop_body(req);
    o2d_free(req);
}

/*
 * mTLS: whether the connection's client presented a certificate that verifies against
 * tls.client_ca_file (GnuTLS, which MHD does its TLS with, checks the chain, validity and
 * signatures). MHD only asks for the certificate (GNUTLS_CERT_REQUEST): this is where a
 * client without one is turned away. Checked once per connection.
 */
static int client_cert_ok(struct MHD_Connection *conn)
{
    struct http_conn *hc = conn_record(conn);
    if (hc != NULL && hc->client_cert != 0) {
        return hc->client_cert > 0;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t sess = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned int npeers = 0, status = 1;
    int ok = sess != NULL && gnutls_certificate_get_peers(sess, &npeers) != NULL && npeers > 0 &&
             gnutls_certificate_verify_peers2(sess, &status) == GNUTLS_E_SUCCESS && status == 0;
    if (hc != NULL) {
        hc->client_cert = ok ? 1 : -1;
    }
    return ok;
}

/* First call: everything that can be decided from the request line and headers. */
static enum MHD_Result on_headers(struct http_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
    enum otlp_encoding enc = OTLP_ENC_PROTOBUF; /* errors are protobuf unless JSON was sent */
    int ct = parse_content_type(header(conn, MHD_HTTP_HEADER_CONTENT_TYPE), &enc);
    enum otlp_signal sig;
    if (!find_route(url, &sig)) {
        return send_status(s->ing, conn, url, O2D_ERR_NOT_FOUND,
                           "unknown path: OTLP/HTTP serves /v1/traces, /v1/logs and /v1/metrics",
                           enc, 0);
    }
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
        /* HTTP-only: no o2d status means "wrong method", so 405 is decided here. */
        count_refusal(s->ing, url, INGEST_REFUSED_METHOD);
        return send_error(conn, url, MHD_HTTP_METHOD_NOT_ALLOWED, GRPC_UNIMPLEMENTED,
                          "method not allowed: use POST", 0, enc, MHD_HTTP_METHOD_POST, 0);
    }
    if (s->tls.verify_clients && !client_cert_ok(conn)) {
        return send_status(s->ing, conn, url, O2D_ERR_UNAUTHENTICATED,
                           "a client certificate signed by tls.client_ca_file is required", enc, 1);
    }
    /* Before anything that costs: a sender without a valid token gets 401 unread. */
    int tenant = -1;
    if (ingest_auth_required(s->ing, O2D_TRANSPORT_HTTP)) {
        const char *av = header(conn, MHD_HTTP_HEADER_AUTHORIZATION);
        const char *why = NULL;
        if (ingest_authenticate(s->ing, O2D_TRANSPORT_HTTP, av, av != NULL ? strlen(av) : 0,
                                &tenant, &why) != O2D_OK) {
            return send_status(s->ing, conn, url, O2D_ERR_UNAUTHENTICATED, why, enc, 1);
        }
        if (ingest_tenant_admit(s->ing, tenant, &why) != O2D_OK) {
            return send_status(s->ing, conn, url, O2D_ERR_BUSY, why, enc, 1);
        }
    }
    if (ct != O2D_OK) {
        return send_status(s->ing, conn, url, O2D_ERR_UNSUPPORTED,
                           "unsupported content type: use application/x-protobuf or "
                           "application/json",
                           enc, 0);
    }
    enum o2d_compression comp;
    const char *ce = header(conn, MHD_HTTP_HEADER_CONTENT_ENCODING);
    if (parse_content_encoding(ce, &comp) != O2D_OK) {
        char v[40], msg[96];
        quote_value(v, sizeof(v), ce);
        snprintf(msg, sizeof(msg), "unsupported content encoding '%s': use gzip or identity", v);
        return send_status(s->ing, conn, url, O2D_ERR_UNSUPPORTED, msg, enc, 0);
    }
    if (atomic_load(&s->draining)) {
        return send_status(s->ing, conn, url, O2D_ERR_SHUTDOWN, "shutting down: retry later", enc,
                           1);
    }
    /* A full exporter queue refuses the body unread (counted there): the connection closes,
     * as the body that follows is not read. */
    const char *qwhy = NULL;
    if (ingest_queue_admit(s->ing, O2D_TRANSPORT_HTTP, (int)sig, &qwhy) != O2D_OK) {
        return send_status(NULL, conn, url, O2D_ERR_BUSY, qwhy, enc, 1);
    }

    size_t max = s->cfg.max_request_body_size;
    const char *te = header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    uint64_t declared = 0;
    if (!chunked && cl != NULL && parse_length(cl, &declared) != O2D_OK) {
        return send_status(s->ing, conn, url, O2D_ERR_INVALID, "invalid Content-Length", enc, 1);
    }
    if (declared > max) {
        return send_status(s->ing, conn, url, O2D_ERR_TOO_LARGE,
                           "request body larger than max_request_body_size", enc, 1);
    }
    struct http_req *req = o2d_calloc(1, sizeof(*req));
    if (req == NULL) {
        return send_status(s->ing, conn, url, O2D_ERR_NOMEM, NULL, enc, 1);
    }
    ingest_share_init(s->ing, &req->share, max);
    ingest_share_set_tenant(&req->share, tenant);
    req->tenant = tenant;
    req->limit = chunked ? max : (size_t)declared;
    req->chunked = chunked;
    /* A body that could not fit now is answered "retry later" before it is read; passing
     * this check reserves nothing, so a declared size alone holds no memory. */
    size_t first = chunked ? 1 : (size_t)declared;
    const char *why = NULL;
    int arv = first > 0 ? ingest_share_admit(s->ing, &req->share, first, &why) : O2D_OK;
    if (arv != O2D_OK) {
        o2d_free(req);
        return send_status(s->ing, conn, url, arv, why, enc, 1);
    }
    req->srv = s;
    req->sig = sig;
    req->enc = enc;
    req->comp = comp;
    req->deadline_ms =
        s->cfg.read_timeout_ms > 0 ? o2d_now_ms() + s->cfg.read_timeout_ms : INT64_MAX;
    o2d_buf_init(&req->body, 0); /* raised with each reservation */
    struct http_conn *hc = conn_record(conn);
    req->w = hc != NULL ? hc->w : NULL;
    atomic_fetch_add(&s->inflight, 1);
    *con_cls = req;
    return MHD_YES;
}

/*
 * A body that fails while it arrives cannot be answered yet (MHD queues no response while
 * body data is pending), so the buffer and reservation go at once and the rest of the body
 * is read and dropped until it ends or the read deadline passes.
 */
static enum MHD_Result fail_body(struct http_req *req, int status, const char *reason)
{
    req->failed = status;
    req->reason = reason;
    req_drop_body(req);
    return MHD_YES;
}

static enum MHD_Result on_body(struct http_req *req, const char *url, const char *data,
                               size_t *size)
{
    struct http_server *s = req->srv;
    size_t n = *size;
    *size = 0;
    req->received += n;
    if (o2d_now_ms() > req->deadline_ms) {
        /* A sender too slow for read_timeout is cut: closing is the only answer left. */
        log_refusal(url, 0, "read_timeout passed before the body ended");
        count_refusal(s->ing, url, INGEST_REFUSED_TIMEOUT);
        return MHD_NO;
    }
    if (req->failed != O2D_OK) {
        return MHD_YES;
    }
    /* MHD holds a Content-Length body to its length: only a chunked one can overrun. */
    if (n > req->limit - req->body.len) {
        return fail_body(req, O2D_ERR_TOO_LARGE, "request body larger than max_request_body_size");
    }
    size_t need = req->body.len + n;
    if (need > req->reserved) {
        size_t want = ingest_grow_to(req->reserved, need, req->limit);
        const char *why = NULL;
        int rv = ingest_share_reserve(s->ing, &req->share, want - req->reserved, &why);
        if (rv != O2D_OK) {
            return fail_body(req, rv, why);
        }
        req->reserved = want;
        req->body.max = want;
    }
    if (req->body.data == NULL && req->w != NULL) {
        /* A kept buffer: its capacity may pass what is reserved, never its length. */
        struct http_worker *w = req->w;
        int64_t now = o2d_now_ms();
        pthread_mutex_lock(&w->mu);
        body_pool_take(&w->spare, &req->body, req->limit, now);
        pthread_mutex_unlock(&w->mu);
    }
    int rv = n <= req->body.max - req->body.len ? o2d_buf_append(&req->body, data, n)
                                                : O2D_ERR_TOO_LARGE;
    if (rv != O2D_OK) {
        return fail_body(req, rv, NULL);
    }
    return MHD_YES;
}

/*
 * MHD 0.9.75 in epoll mode (edge-triggered) takes a short read for a drained socket, so a
 * FIN that arrived with the last bytes of an unfinished body raises no further event, and the
 * upload would hold its reservation until idle_timeout. When the socket holds nothing but
 * that FIN, shutting our read side raises the event MHD waits for: it reads the end of the
 * stream and ends the request as for any client that leaves (on_completed releases).
 */
static void wake_on_peer_close(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL) {
        return;
    }
    char c;
    if (recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
        shutdown(ci->connect_fd, SHUT_RD);
    }
}

/* The answer to an ingested request. */
static enum MHD_Result answer(struct MHD_Connection *conn, const char *url, enum otlp_encoding enc,
                              const struct ingest_result *res)
{
    if (res->status != O2D_OK) {
        return send_status(NULL, conn, url, res->status, res->reason, enc, 0);
    }
    struct o2d_buf out;
    o2d_buf_init(&out, HTTP_RESPONSE_MAX);
    int rv = ingest_encode_response(res, enc, &out);
    if (rv != O2D_OK) {
        o2d_buf_cleanup(&out);
        /* The data was accepted; only its answer failed (OTLP: 500 when it cannot fit). */
        return send_status(NULL, conn, url, rv == O2D_ERR_NOMEM ? O2D_ERR_NOMEM : O2D_ERR_INTERNAL,
                           "cannot encode the response", enc, 0);
    }
    enum MHD_Result ok = send_body(conn, MHD_HTTP_OK, enc, &out, 0, NULL, 0);
    o2d_buf_cleanup(&out);
    return ok;
}

/* On the sync waiter's thread: the request's syncs ran; MHD calls on_request again once its
 * connection is resumed, and on_complete answers. */
static void req_synced(struct sync_wait *w, int status)
{
    struct http_req *req = (struct http_req *)((char *)w - offsetof(struct http_req, wait));
    struct http_server *s = req->srv; /* outlives req, which MHD may free once resumed */
    if (status != O2D_OK && req->res.status == O2D_OK) {
        /* written, maybe sent, but not durable: the client retries (at least once) */
        req->res.status = O2D_ERR_BUSY;
        req->res.reason = "the disk queue could not sync; retry later";
    }
    req->parked = 2;
    MHD_resume_connection(req->conn);
    atomic_fetch_sub(&s->parked, 1);
}

/* Last call: the body is complete. */
static enum MHD_Result on_complete(struct http_req *req, struct MHD_Connection *conn,
                                   const char *url)
{
    struct http_server *s = req->srv;
    if (req->failed != O2D_OK) {
        return send_status(s->ing, conn, url, req->failed, req->reason, req->enc, 0);
    }
    struct ingest_result *res = &req->res;
    if (req->parked == 2) {
        return answer(conn, url, req->enc, res); /* back from the sync waiter */
    }
    int deferring = s->waiter != NULL && o2d_defer_begin(&req->wait.ws);
    const uint8_t *body = req->body.data != NULL ? req->body.data : (const uint8_t *)"";
    ingest_request_as(s->ing, req->tenant, O2D_TRANSPORT_HTTP, req->sig, req->enc, req->comp, body,
                      req->body.len, s->cfg.max_request_body_size, res);
    req_drop_body(req);
    if (deferring) {
        o2d_defer_stop();
        if (o2d_waitset_pending(&req->wait.ws)) {
            /* suspended before it is parked: the resume always comes after */
            req->parked = 1;
            req->conn = conn;
            req->wait.done = req_synced;
            atomic_fetch_add(&s->parked, 1);
            MHD_suspend_connection(conn);
            sync_waiter_park(s->waiter, &req->wait);
            return MHD_YES;
        }
    }
    return answer(conn, url, req->enc, res);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_req *req = *con_cls;
    if (req == NULL) {
        conn_request_began(conn);
        return on_headers(cls, conn, url, method, con_cls);
    }
    if (*upload_data_size > 0) {
        enum MHD_Result r = on_body(req, url, upload_data, upload_data_size);
        if (r == MHD_YES && (req->chunked || req->received < req->limit)) {
            wake_on_peer_close(conn);
        }
        return r;
    }
    return on_complete(req, conn, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct http_req *req = *con_cls;
    conn_request_ended(s, conn);
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    req_free(req);
    atomic_fetch_sub(&s->inflight, 1);
}

/*
 * MHD tells when a connection starts serving on a daemon's thread and when it closes; the
 * close gives the acceptor its slot back. MHD calls CLOSED only after STARTED, and a
 * connection it drops before STARTED is one MHD_add_connection() already reported, except
 * when its memory pool cannot be allocated, where the slot stays taken. STARTED puts the
 * connection's record on the idle list (its first head is due within read_header_timeout);
 * CLOSED unlinks it under the mutex, before MHD closes the socket.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_worker *w = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct http_conn *hc = ci != NULL ? o2d_calloc(1, sizeof(*hc)) : NULL;
        if (hc == NULL) {
            *socket_context = &untracked;
        } else {
            int64_t now = o2d_now_ms();
            int64_t limit = w->srv->cfg.read_header_timeout_ms;
            hc->w = w;
            hc->fd = ci->connect_fd;
            pthread_mutex_lock(&w->mu);
            conn_idle(hc, now, limit > 0 ? now + limit : INT64_MAX);
            pthread_mutex_unlock(&w->mu);
            *socket_context = hc;
        }
        struct o2d_logline l;
        o2d_log_begin(&l, O2D_LOG_DEBUG, "connection");
        o2d_log_cstr(&l, "server", "http");
        o2d_log_int(&l, "worker", w->index);
        o2d_log_end(&l);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        struct http_conn *hc = *socket_context;
        *socket_context = NULL;
        if ((void *)hc != &untracked) {
            pthread_mutex_lock(&w->mu);
            conn_busy(hc);
            pthread_mutex_unlock(&w->mu);
            o2d_free(hc);
        }
        acceptor_release(w->srv->acc, w->index);
    }
}

/* On the acceptor thread: closes the connections whose request head is late. */
static void tick_conns(void *ctx, int64_t now)
{
    struct http_server *s = ctx;
    for (int i = 0; i < s->nworkers; i++) {
        struct http_worker *w = &s->workers[i];
        uint64_t late = 0;
        pthread_mutex_lock(&w->mu);
        body_pool_trim(&w->spare, now, HTTP_SPARE_IDLE_MS);
        for (struct http_conn *hc = w->idle_head, *next; hc != NULL; hc = next) {
            next = hc->next;
            if (now >= hc->head_deadline_ms) {
                conn_shut(hc);
                late++;
            }
        }
        pthread_mutex_unlock(&w->mu);
        for (uint64_t j = 0; j < late; j++) {
            ingest_count_conn_close(s->ing, O2D_TRANSPORT_HTTP, INGEST_CONN_HEADER_TIMEOUT);
        }
        if (late > 0) {
            struct o2d_logline l;
            o2d_log_begin(&l, O2D_LOG_DEBUG, "connections closed");
            o2d_log_cstr(&l, "server", "http");
            o2d_log_cstr(&l, "reason", "read_header_timeout: request head unfinished");
            o2d_log_uint(&l, "count", late);
            o2d_log_end(&l);
        }
    }
}

/* On the acceptor thread: a newcomer the acceptor refused, for the closed-connection count. */
static void refused_conn(void *ctx, enum acceptor_refusal why)
{
    struct http_server *s = ctx;
    ingest_count_conn_close(s->ing, O2D_TRANSPORT_HTTP,
                            why == ACCEPTOR_REFUSED_FULL ? INGEST_CONN_REFUSED_FULL
                                                         : INGEST_CONN_REFUSED_NO_FD);
}

/* How far down a worker's idle list eviction looks for a connection with nothing unread. */
#define EVICT_SCAN 16

/*
 * Under w->mu: the longest-idle connection of w whose socket holds no unread bytes, NULL when
 * none within EVICT_SCAN. One with bytes waiting is a client whose request arrived before the
 * daemon's thread read it (a busy machine): it is not idle, and evicting it would fail a
 * request a client sent in good faith. A client that sends a byte and stops is not spared:
 * the daemon reads the byte and the connection is idle again.
 */
static struct http_conn *oldest_evictable(struct http_worker *w)
{
    int n = 0;
    for (struct http_conn *hc = w->idle_head; hc != NULL && n < EVICT_SCAN; hc = hc->next, n++) {
        int unread = 0;
        if (ioctl(hc->fd, FIONREAD, &unread) != 0 || unread == 0) {
            return hc;
        }
    }
    return NULL;
}

/* On the acceptor thread, at max_connections: closes the longest-idle connection. */
static int evict_conn(void *ctx)
{
    struct http_server *s = ctx;
    int best = -1;
    int64_t best_ms = INT64_MAX;
    for (int i = 0; i < s->nworkers; i++) {
        struct http_worker *w = &s->workers[i];
        pthread_mutex_lock(&w->mu);
        struct http_conn *hc = oldest_evictable(w);
        if (hc != NULL && hc->idle_since_ms < best_ms) {
            best = i;
            best_ms = hc->idle_since_ms;
        }
        pthread_mutex_unlock(&w->mu);
    }
    if (best < 0) {
        return O2D_ERR_BUSY;
    }
    /* Its list may have changed since: whatever is oldest there now goes. */
    struct http_worker *w = &s->workers[best];
    pthread_mutex_lock(&w->mu);
    struct http_conn *victim = oldest_evictable(w);
    if (victim != NULL) {
        conn_shut(victim);
    }
    pthread_mutex_unlock(&w->mu);
    if (victim == NULL) {
        return O2D_ERR_BUSY;
    }
    ingest_count_conn_close(s->ing, O2D_TRANSPORT_HTTP, INGEST_CONN_EVICTED);
    return O2D_OK;
}

/*
 * On the acceptor thread: the socket goes to the chosen daemon, which owns it from here on,
 * also when it cannot take it (MHD closes it then). With an internal polling thread MHD only
 * prepares the connection here and starts it on the daemon's thread, so a failure reported
 * here comes before STARTED, and no CLOSED will release the slot: the acceptor does.
 */
static int assign_conn(void *ctx, int worker, int fd, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    struct http_server *s = ctx;
    if (MHD_add_connection(s->workers[worker].daemon, fd, addr, addrlen) == MHD_YES) {
        return O2D_OK;
    }
    int e = errno;
    s->add_failures++;
    static const char msg[] = "connection dropped: the HTTP server cannot take it";
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_WARN, msg, &s->add_fail_log, msg, o2d_now_ms());
    o2d_log_cstr(&l, "server", "http");
    o2d_log_cstr(&l, "error", strerror(e));
    o2d_log_uint(&l, "dropped", s->add_failures);
    o2d_log_end(&l);
    return O2D_ERR_SYSTEM;
}

int http_server_new(struct http_server **out, const struct o2d_http_config *cfg, struct ingest *ing,
                    char *err, size_t errlen)
{
    int rv = O2D_ERR_NOMEM;
    *out = NULL;
    struct http_server *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    s->cfg = *cfg;
    s->ing = ing;
    s->fd = -1;
    atomic_init(&s->draining, 0);
    atomic_init(&s->inflight, 0);
    rv = o2d_tls_load(&s->tls, "receivers.otlp.protocols.http.tls", cfg->tls_cert_file,
                      cfg->tls_key_file, O2D_TLS_PEM_ONLY, err, errlen);
    if (rv == O2D_OK) {
        rv = o2d_tls_client_ca(&s->tls, "receivers.otlp.protocols.http.tls",
                               cfg->tls_client_ca_file, err, errlen);
    }
    if (rv != O2D_OK) {
        goto out;
    }
    if (s->tls.on && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen,
                 "receivers.otlp.protocols.http.tls is set but this libmicrohttpd (%s) is built "
                 "without TLS",
                 MHD_get_version());
        rv = O2D_ERR_CONFIG;
        goto out;
    }
    rv = o2d_listen(cfg->endpoint, HTTP_BACKLOG, &s->fd, &s->port, err, errlen);
    if (rv != O2D_OK) {
        goto out;
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "listening");
    o2d_log_cstr(&l, "server", "http");
    o2d_log_cstr(&l, "endpoint", cfg->endpoint);
    o2d_log_int(&l, "port", s->port);
    if (cfg->defer_syncs) {
        o2d_log_raw(&l, "sync_waiter", "true", 4);
    }
    o2d_log_raw(&l, "tls", s->tls.on ? "true" : "false", s->tls.on ? 4 : 5);
    o2d_log_end(&l);
    *out = s;
    s = NULL;
out:
    http_server_free(s);
    return rv;
}

static void stop_daemons(struct http_server *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        if (s->workers[i].daemon != NULL) {
            MHD_stop_daemon(s->workers[i].daemon);
            s->workers[i].daemon = NULL;
        }
    }
    s->running = 0;
}

int http_server_start(struct http_server *s)
{
    if (s->running || s->fd < 0) {
        return O2D_ERR_INTERNAL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu >= 1 && s->cfg.workers_per_cpu > 1) {
        ncpu *= s->cfg.workers_per_cpu;
    }
    unsigned int threads = ncpu < 1 ? 1 : ncpu > HTTP_MAX_THREADS ? HTTP_MAX_THREADS : ncpu;
    /* Each daemon needs room for one connection at least. */
    unsigned int limit = s->cfg.max_connections > 0 ? s->cfg.max_connections : 1;
    if (limit < threads) {
        threads = limit;
    }
    /* The acceptor keeps the total under max_connections and gives a connection to the
     * least-loaded daemon, so none ever holds more than its share rounded up. */
    unsigned int per_daemon = (limit + threads - 1) / threads;
    /* MHD's own limit is only a second guard, with room for as many again: MHD sends CLOSED
     * (which gives the acceptor the slot back) before it stops counting the connection, so
     * a newcomer handed over at once, as after an eviction, would otherwise be refused. */
    unsigned int mhd_limit = per_daemon * 2;
    int64_t idle_s = s->cfg.idle_timeout_ms <= 0 ? 0 : (s->cfg.idle_timeout_ms + 999) / 1000;
    unsigned int idle = (unsigned int)(idle_s > 86400 ? 86400 : idle_s);
    /* MHD_USE_ITC: MHD_add_connection() from the acceptor thread wakes the daemon. */
    unsigned int flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    if (s->cfg.defer_syncs) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
        int rv = sync_waiter_new(&s->waiter);
        if (rv != O2D_OK) {
            o2d_logf(O2D_LOG_ERROR, "http: cannot start the sync waiter");
            return rv;
        }
    }
    /* MHD keeps the pointers, not copies: s->tls lives until the daemons have stopped. */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls.key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls.cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
        /* mTLS: MHD asks for a client certificate; client_cert_ok() checks it. */
        {s->tls.ca_pem != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, s->tls.ca_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    if (s->tls.on) {
        flags |= MHD_USE_TLS;
    } else {
        tls_opts[0].option = MHD_OPTION_END;
    }
    s->nworkers = (int)threads;
    s->running = 1;
    for (int i = 0; i < s->nworkers; i++) {
        struct http_worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        body_pool_cleanup(&w->spare); /* none kept from a start before */
        body_pool_init(&w->spare, HTTP_SPARE_MAX, HTTP_SPARE_BYTES);
        if (!w->mu_ok) {
            w->mu_ok = pthread_mutex_init(&w->mu, NULL) == 0;
        }
        if (!w->mu_ok) {
            o2d_logf(O2D_LOG_ERROR, "cannot start the OTLP/HTTP server on %s", s->cfg.endpoint);
            stop_daemons(s);
            return O2D_ERR_SYSTEM;
        }
        w->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, /* every request */
            MHD_OPTION_EXTERNAL_LOGGER, (MHD_LogCallback)mhd_small_log,
            (void *)"http",                                               /* first, to see all */
            MHD_OPTION_CONNECTION_LIMIT, mhd_limit,                       /* see above */
            MHD_OPTION_CONNECTION_TIMEOUT, idle,                          /* idle senders are cut */
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY, /* bounds headers */
            MHD_OPTION_NOTIFY_COMPLETED, (MHD_RequestCompletedCallback)on_completed, s, /* frees */
            MHD_OPTION_NOTIFY_CONNECTION, (MHD_NotifyConnectionCallback)on_connection, w, /* load */
            MHD_OPTION_ARRAY, tls_opts, /* TLS, when on */
            MHD_OPTION_END);
        if (w->daemon == NULL) {
            o2d_logf(O2D_LOG_ERROR, "cannot start the OTLP/HTTP server on %s", s->cfg.endpoint);
            stop_daemons(s);
            return O2D_ERR_SYSTEM;
        }
    }
    struct acceptor_config acfg = {
        .server = "http",
        .fd = s->fd,
        .nworkers = s->nworkers,
        .max_connections = limit,
        .assign = assign_conn,
        .evict = evict_conn,
        .refused = refused_conn,
        .tick = tick_conns,
        .ctx = s,
    };
    int rv = acceptor_new(&s->acc, &acfg);
    if (rv == O2D_OK) {
        rv = acceptor_start(s->acc);
    }
    if (rv != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "cannot start the OTLP/HTTP acceptor on %s", s->cfg.endpoint);
        stop_daemons(s);
        return rv;
    }
    return O2D_OK;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s->port;
}

/* Parked requests come back in bounded time (a sync answers or fails): waited for even past
 * the deadline, since the waiter resumes their connections, which must still exist. */
static void wait_parked(struct http_server *s)
{
    while (atomic_load(&s->parked) > 0) {
        struct timespec ts = {0, HTTP_DRAIN_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void http_server_shutdown(struct http_server *s, int64_t deadline_ms)
{
    if (s == NULL || !s->running) {
        return;
    }
    /* No new connection from here on: the acceptor has stopped, new attempts are refused. */
    acceptor_stop(s->acc);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    atomic_store(&s->draining, 1);
    while (atomic_load(&s->inflight) > 0 && o2d_now_ms() < deadline_ms) {
        struct timespec ts = {0, HTTP_DRAIN_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    long left = atomic_load(&s->inflight);
    wait_parked(s);
    stop_daemons(s);
    struct o2d_logline l;
    o2d_log_begin(&l, left > 0 ? O2D_LOG_WARN : O2D_LOG_INFO, "stopped");
    o2d_log_cstr(&l, "server", "http");
    o2d_log_int(&l, "requests_cut", left);
    o2d_log_end(&l);
}

void http_server_free(struct http_server *s)
{
    if (s == NULL) {
        return;
    }
    acceptor_stop(s->acc);
    if (s->running) {
        atomic_store(&s->draining, 1);
        wait_parked(s);
        stop_daemons(s);
    }
    sync_waiter_free(s->waiter);
    /* After the daemons: closing their connections releases slots of the acceptor. */
    acceptor_free(s->acc);
    for (int i = 0; i < HTTP_MAX_THREADS; i++) {
        body_pool_cleanup(&s->workers[i].spare);
        if (s->workers[i].mu_ok) {
            pthread_mutex_destroy(&s->workers[i].mu);
        }
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    o2d_tls_cleanup(&s->tls);
    o2d_free(s);
}
