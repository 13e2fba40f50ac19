/*
 * grpc_server.c: the OTLP/gRPC receiver (h2c with prior knowledge, or HTTP/2 over TLS when
 * tls.cert_file and tls.key_file are set; libnghttp2, OpenSSL).
 *
 * Threads: GRPC_MAX_WORKERS at most, one per online CPU, plus one acceptor (acceptor.c) that
 * accepts every connection and hands it to the worker with the fewest open connections. Each
 * worker has its own epoll set and an inbox of handed-over sockets (a mutex-protected array,
 * with its eventfd as the wake-up); it adopts them and owns each connection outright, with its
 * nghttp2 session and streams. Nothing on the request path is shared between workers but the
 * acceptor's counts and ingest itself. A request is unframed, handed to ingest_request() and
 * answered on the worker thread, so spreading connections is what spreads the work. With a
 * disk queue that syncs (a request is answered only once durable), the worker ingests the
 * request with a waitset (o2d_defer.h): the exporters write it and leave their syncs in the
 * waitset, and the worker parks the stream (struct grpc_job) with the sync waiter (struct
 * sync_waiter), one thread that runs the waits of every worker's requests (a sync covers
 * many) and sends each result back through its worker's eventfd; the worker answers the
 * stream, if it is still open. No thread but the waiter sleeps for a disk.
 *
 * Per stream: headers are judged as they arrive (never buffered); the message length is
 * checked against the size limit and the room left in the budget when its 5-byte prefix
 * arrives, but reserves nothing: memory is reserved as message bytes arrive, in growing
 * steps (ingest_grow_to), through the connection's ingest_share, which bounds what all the
 * streams of one connection hold together. A stream that ends early (answered, reset by the
 * client, or cut with its connection) gives its reservation back at once. Every problem of
 * one request is answered on its stream (trailers-only response, plus RST_STREAM(NO_ERROR)
 * when the client was still sending); only what nghttp2 itself finds a connection error ends
 * the connection.
 *
 * Writes go through nghttp2_session_mem_send() into a bounded per-connection buffer; when the
 * socket would block, the connection waits for EPOLLOUT and is not read meanwhile.
 *
 * TLS: a connection first runs a non-blocking handshake in the worker's loop (bounded by
 * GRPC_HANDSHAKE_MS, or max_connection_idle when shorter); its nghttp2 session starts only
 * once the handshake is done. Then the same loop moves bytes with SSL_read/SSL_write instead
 * of recv/send, into and out of the same buffers. OpenSSL may want to write while reading or
 * to read while writing, and may hold decrypted bytes epoll cannot see; the tls_* fields of
 * a connection track both, and a connection with bytes left in OpenSSL is served again from
 * the worker's loop without waiting for epoll (`pending`). The plaintext path is unchanged.
 *
 * Timers run from each worker loop every GRPC_TICK_MS: request deadlines (grpc-timeout,
 * request_timeout), idle connections, max_connection_age with its grace, and shutdown.
 *
 * Slots are earned. The client preface, and every header block once its first frame header
 * is in, must arrive whole within read_header_timeout: a HEADERS without END_HEADERS, a
 * CONTINUATION trickle or a connection that never speaks gets GOAWAY and is closed. nghttp2
 * says nothing of a block it has not finished, so read_conn() follows the frame boundaries
 * of what it feeds nghttp2 (h2_track.c: lengths, types and END_HEADERS only). And when
 * max_connections is reached, the acceptor asks (evict_conn, on its thread) the worker with
 * the longest-idle connection (no stream open) to close it: each worker keeps its idle
 * connections in a list, oldest first, and publishes its length and oldest time in atomics;
 * the request arrives as a count and the eventfd, and the worker closes its oldest idle
 * connections with GOAWAY in its own loop.
 *
 * Decoding, size limits after decompression and counting belong to ingest.c.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "acceptor.h"
#include "body_pool.h"
#include "grpc_frame.h"
#include "grpc_server.h"
#include "h2_track.h"
#include "net.h"
#include "o2d.h"
#include "o2d_alloc.h"
#include "o2d_defer.h"
#include "o2d_log.h"
#include "o2d_time.h"
#include "status_map.h"
#include "sync_waiter.h"
#include "tls.h"

#define GRPC_MAX_WORKERS 16
#define GRPC_TICK_MS     250
/* Request bodies a worker keeps for its next streams (body_pool.h): each at most
 * GRPC_SPARE_MAX bytes of capacity, GRPC_SPARE_BYTES in all, freed after GRPC_SPARE_IDLE_MS
 * without use. A client's concurrent streams interleave their DATA, so a worker receives many
 * bodies at once: with 4 kept (before), 3 bodies in 4 under 8 x 10 streams found none and
 * grew a new buffer through 2-4 reallocs. */
#define GRPC_SPARE_MAX      (1024 * 1024)
#define GRPC_SPARE_BYTES    (4 * 1024 * 1024)
#define GRPC_SPARE_IDLE_MS  2000
#define GRPC_LISTEN_BACKLOG 1024
/* Reads are small enough that one of them cannot hold more PINGs or SETTINGS than nghttp2
 * queues ACKs for (max_outbound_ack, 1000): the ACKs of one read are always taken out before
 * the next read, and a client that sends faster than it reads is stopped by TCP while its
 * output is backed up, instead of being cut off as a flood. */
#define GRPC_READ_BUF        (8 * 1024)
#define GRPC_READS_PER_EVENT 32
#define GRPC_MAX_EVENTS      64
/* Sockets taken out of the inbox per lock. */
#define GRPC_ADOPT_BATCH 64
/* nghttp2 is asked for more frames only while less than this is waiting for the socket. */
#define GRPC_OUT_HIGH (64 * 1024)
/* Hard cap of the output buffer: GRPC_OUT_HIGH plus one frame always fits. */
#define GRPC_OUT_MAX         (1024 * 1024)
#define GRPC_HEADER_LIST_MAX (16 * 1024)
#define GRPC_STREAM_WINDOW   (1 << 20)
#define GRPC_CONN_WINDOW     (8 << 20)
#define GRPC_RESPONSE_MAX    (64 * 1024)
#define GRPC_MESSAGE_MAX     512  /* grpc-message, percent-encoded */
#define GRPC_DETAILS_MAX     1024 /* google.rpc.Status before base64 */
/* A shutdown notice is followed by the final GOAWAY after about one round trip. */
#define GRPC_NOTICE_MS       100
#define GRPC_ACCEPT_ENCODING "identity,gzip"
/* A TLS handshake must be done within this (or max_connection_idle when shorter), so a
 * client that connects and sends nothing, or half a ClientHello, does not hold a slot. */
#define GRPC_HANDSHAKE_MS 10000

static const char reason_headers_too_large[] = "grpc: header list too large";
static const char reason_content_type[] = "grpc: content-type must be application/grpc";
static const char reason_method[] = "grpc: method must be POST";
static const char reason_unknown_method[] = "grpc: unknown service or method";
static const char reason_nomem[] = "grpc: out of memory, retry later";
static const char reason_deadline[] = "grpc: request did not arrive before its deadline";
static const char reason_encode[] = "grpc: cannot encode the response";

struct grpc_stream {
    struct grpc_stream *prev, *next;
    struct grpc_conn *conn;
    int32_t id;
    /* What the request headers said (judged as they arrive, never kept). */
    int method_ok;
    int path_ok;
    int ct_ok;
    int headers_too_large;
    enum otlp_signal sig;
    enum grpc_encoding enc;
    int64_t timeout_ms;      /* grpc-timeout, -1 if absent or invalid */
    int auth_seen;           /* an authorization header was judged (the first one counts) */
    int auth_rv;             /* its verdict: O2D_OK or O2D_ERR_UNAUTHENTICATED */
    const char *auth_reason; /* static, with a refusal */
    int tenant;              /* the token's tenant, -1 for none */
    size_t header_bytes;
    int64_t started_ms;
    int64_t deadline_ms; /* 0 = none */
    /* The request body: the one message, reserved and allocated as its bytes arrive. */
    struct grpc_frame frame;
    enum o2d_compression comp;
    struct o2d_buf body; /* body.max follows reserved */
    size_t reserved;     /* bytes held through conn->share */
    int headers_done;
    int request_done;   /* END_STREAM received */
    int answered;       /* a response was submitted */
    int ingested;       /* handed to ingest_request, which counts its own refusals */
    int rst_after_send; /* answered early: reset once the trailers-only HEADERS is out */
    int in_job;         /* ingested, parked with the sync waiter */
    /* The success response body: prefix + Export*ServiceResponse. */
    struct o2d_buf resp;
    size_t resp_off;
};

enum conn_drain {
    DRAIN_NONE = 0,
    DRAIN_NOTICE = 1, /* shutdown notice sent */
    DRAIN_GOAWAY = 2, /* final GOAWAY sent */
};

struct grpc_conn {
    struct grpc_conn *prev, *next;
    struct grpc_worker *w;
    int fd;
    nghttp2_session *sess;
    struct grpc_stream *streams;
    size_t nstreams;
    struct ingest_share share; /* what all its streams hold of the memory budget */
    int64_t created_ms;
    int64_t idle_since_ms;
    enum conn_drain drain;
    int64_t drain_ms;
    int close_when_flushed;
    struct o2d_buf out;
    size_t out_off;
    uint32_t events; /* registered with epoll */
    int out_blocked; /* the last flush left output the socket would not take */
    /* TLS only (ssl == NULL on a plaintext connection). */
    SSL *ssl;
    int handshaking;          /* no nghttp2 session until the handshake is done */
    int tls_dead;             /* a fatal TLS error: no close_notify may follow */
    int tls_read_wants_write; /* SSL_read() needs the socket writable */
    int tls_write_wants_read; /* SSL_write() needs the socket readable */
    int tls_unread;           /* the last read stopped before OpenSSL had nothing left */
    int pending;              /* in the worker's count of connections to read again */
    /* The worker's idle list (no stream open), oldest first. */
    struct grpc_conn *idle_prev, *idle_next;
    int in_idle;
    /* Where the client's bytes stand in HTTP/2 framing: nghttp2 says nothing of a header
     * block it has not finished, so read_conn() follows what it feeds nghttp2. */
    int64_t session_ms; /* the nghttp2 session started: the preface is due from here */
    struct h2_track track;
    /* Requests parked with the sync waiter. A connection closed meanwhile stays allocated, on
     * the worker's zombie list, until the last of them is back. */
    size_t njobs;
    int closed;
};

/* A request ingested with a waitset that holds waits (its syncs): parked with the sync waiter
 * (sync_waiter.h) until they ran. The worker that made it gets it back and answers the stream
 * if it is still open. */
struct grpc_job {
    struct sync_wait wait; /* first: the waiter's done gets the job back from it */
    struct grpc_job *next;
    struct grpc_conn *conn;
    int32_t stream_id;
    struct ingest_result res;
};

struct grpc_worker {
    struct grpc_server *srv;
    int index;
    pthread_t thread;
    int epfd;
    int evfd; /* wakes the worker: sockets in the inbox, or shutdown */
    int stopping;
    struct grpc_conn *conns;
    size_t nconns;
    size_t npending; /* connections with decrypted bytes waiting in OpenSSL */
    uint8_t *rbuf;
    /* Sockets the acceptor handed over, not adopted yet. The acceptor never gives a worker
     * more than ceil(max_connections / nworkers) open connections, so inbox_cap is that. */
    pthread_mutex_t inbox_mu;
    int inbox_mu_ok;
    int *inbox;
    size_t ninbox;
    size_t inbox_cap;
    /* Idle connections, oldest first, and what the acceptor thread may read of them. */
    struct grpc_conn *idle_head, *idle_tail;
    size_t nidle;
    atomic_size_t idle_pub;
    _Atomic int64_t oldest_idle_pub;
    atomic_uint evict_req; /* evictions the acceptor asked for, not done yet */
    /* The sync waiter's answers (under done_mu), and the jobs not back yet. */
    pthread_mutex_t done_mu;
    int done_mu_ok;
    struct grpc_job *done;
    size_t njobs;
    struct grpc_conn *zombies; /* closed, jobs outstanding */
    struct body_pool spare;    /* request bodies kept for reuse */
};

struct grpc_server {
    struct o2d_grpc_config cfg;
    struct ingest *ing;
    struct o2d_tls tls; /* tls.on: every connection is TLS */
    int lfd;
    uint16_t port;
    int nworkers;
    struct grpc_worker workers[GRPC_MAX_WORKERS];
    nghttp2_session_callbacks *cbs;
    struct sync_waiter *waiter; /* NULL: nothing syncs; requests are answered at once */
    struct acceptor *acc;
    atomic_int stopping;
    _Atomic int64_t stop_deadline_ms;
    int nstarted;
    int joined;
};

/* A header field with a literal name (nghttp2 copies values on submit). */
#define NV(n, v, vl)                                                                               \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME          \
    }

/* epoll tag of the eventfd, the one fd that is not a connection. */
static char tag_wake;

/* ---- idle connections: what eviction chooses from ---- */

/* What evict_conn() reads on the acceptor thread. */
static void publish_idle(struct grpc_worker *w)
{
    atomic_store(&w->idle_pub, w->nidle);
    atomic_store(&w->oldest_idle_pub,
                 w->idle_head != NULL ? w->idle_head->idle_since_ms : INT64_MAX);
}

/* c has no stream open since idle_since_ms (now): the newest idle connection. */
static void idle_link(struct grpc_conn *c)
{
    struct grpc_worker *w = c->w;
    if (c->in_idle) {
        return;
    }
    c->in_idle = 1;
    c->idle_next = NULL;
    c->idle_prev = w->idle_tail;
    if (w->idle_tail != NULL) {
        w->idle_tail->idle_next = c;
    } else {
        w->idle_head = c;
    }
    w->idle_tail = c;
    w->nidle++;
    publish_idle(w);
}

static void idle_unlink(struct grpc_conn *c)
{
    struct grpc_worker *w = c->w;
    if (!c->in_idle) {
        return;
    }
    c->in_idle = 0;
    if (c->idle_prev != NULL) {
        c->idle_prev->idle_next = c->idle_next;
    } else {
        w->idle_head = c->idle_next;
    }
    if (c->idle_next != NULL) {
        c->idle_next->idle_prev = c->idle_prev;
    } else {
        w->idle_tail = c->idle_prev;
    }
    c->idle_prev = c->idle_next = NULL;
    w->nidle--;
    publish_idle(w);
}

/* ---- streams ---- */

static void release_body(struct grpc_server *s, struct grpc_stream *st)
{
    if (st->body.data != NULL) {
        body_pool_give(&st->conn->w->spare, &st->body, o2d_now_ms()); /* for the next stream */
    }
    o2d_buf_init(&st->body, 0);
    if (st->reserved > 0) {
        ingest_share_release(s->ing, &st->conn->share, st->reserved);
        st->reserved = 0;
    }
}

static void free_stream(struct grpc_conn *c, struct grpc_stream *st)
{
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        c->streams = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    c->nstreams--;
    release_body(c->w->srv, st);
    o2d_buf_cleanup(&st->resp);
    o2d_free(st);
}

static struct grpc_stream *get_stream(nghttp2_session *sess, int32_t id)
{
    return nghttp2_session_get_stream_user_data(sess, id);
}

/*
 * Answers a stream with a trailers-only response: HEADERS(:status, content-type,
 * grpc-accept-encoding, grpc-status, grpc-message[, grpc-status-details-bin]) + END_STREAM.
 * answer_counted: for a refusal the caller counted already; answer_error counts it.
 */
static void answer_counted(struct grpc_conn *c, struct grpc_stream *st, int status,
                           const char *reason, int http_status)
{
    if (st->answered) {
        return;
    }
    st->answered = 1;
    release_body(c->w->srv, st);
    enum grpc_code code = o2d_status_to_grpc(status);
    if (reason == NULL) {
        reason = o2d_strerror(status);
    }
    char http[8], grpc_status[8], msg[GRPC_MESSAGE_MAX];
    char details[GRPC_BASE64_LEN(GRPC_DETAILS_MAX)];
    size_t details_len = 0;
    snprintf(http, sizeof(http), "%d", http_status);
    snprintf(grpc_status, sizeof(grpc_status), "%d", (int)code);
    size_t msg_len = grpc_percent_encode(reason, strlen(reason), msg, sizeof(msg));
    if (code == GRPC_UNAVAILABLE) {
        struct o2d_buf b;
        o2d_buf_init(&b, GRPC_DETAILS_MAX);
        if (ingest_encode_status((int)code, reason, o2d_status_retry_after(status),
                                 OTLP_ENC_PROTOBUF, &b) == O2D_OK) {
            details_len = grpc_base64_unpadded(b.data, b.len, details, sizeof(details));
        }
        o2d_buf_cleanup(&b);
    }

    nghttp2_nv nv[] = {
        NV(":status", http, strlen(http)),
        NV("content-type", "application/grpc", sizeof("application/grpc") - 1),
        NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING, sizeof(GRPC_ACCEPT_ENCODING) - 1),
        NV("grpc-status", grpc_status, strlen(grpc_status)),
        NV("grpc-message", msg, msg_len),
        NV("grpc-status-details-bin", details, details_len),
    };
    size_t nvlen = details_len > 0 ? 6 : 5;

    if (nghttp2_submit_response(c->sess, st->id, nv, nvlen, NULL) != 0) {
        nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    /* RFC 9113 8.1: a response sent before the request is complete is followed by
     * RST_STREAM(NO_ERROR), so the client stops sending. Done once the HEADERS is out. */
    st->rst_after_send = !st->request_done;
}

static void answer_error(struct grpc_conn *c, struct grpc_stream *st, int status,
                         const char *reason, int http_status)
{
    if (st->answered) {
        return;
    }
    if (!st->ingested) {
        ingest_count_refusal(c->w->srv->ing, O2D_TRANSPORT_GRPC, st->path_ok ? (int)st->sig : -1,
                             ingest_refusal_of(status));
    }
    answer_counted(c, st, status, reason, http_status);
}

static ssize_t read_response(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct grpc_stream *st = src->ptr;
    size_t left = st->resp.len - st->resp_off;
    size_t n = left < len ? left : len;
    if (n > 0) {
        memcpy(buf, st->resp.data + st->resp_off, n);
        st->resp_off += n;
    }
    if (st->resp_off == st->resp.len) {
        static const nghttp2_nv trailers[] = {
            NV("grpc-status", "0", 1),
        };
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(sess, id, trailers, 1) != 0) {
            /* nghttp2 resets the stream (INTERNAL_ERROR); the session lives on. */
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

static void answer_ok(struct grpc_conn *c, struct grpc_stream *st, const struct ingest_result *res)
{
    static const uint8_t zero_prefix[GRPC_PREFIX_LEN] = {0};
    o2d_buf_init(&st->resp, GRPC_RESPONSE_MAX);
    if (o2d_buf_append(&st->resp, zero_prefix, sizeof(zero_prefix)) != O2D_OK ||
        ingest_encode_response(res, OTLP_ENC_PROTOBUF, &st->resp) != O2D_OK) {
        o2d_buf_cleanup(&st->resp);
        answer_error(c, st, O2D_ERR_INTERNAL, reason_encode, 200);
        return;
    }
    size_t n = st->resp.len - GRPC_PREFIX_LEN;
    st->resp.data[1] = (uint8_t)(n >> 24);
    st->resp.data[2] = (uint8_t)(n >> 16);
    st->resp.data[3] = (uint8_t)(n >> 8);
    st->resp.data[4] = (uint8_t)n;

    static const nghttp2_nv nv[] = {
        NV(":status", "200", 3),
        NV("content-type", "application/grpc", sizeof("application/grpc") - 1),
        NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING, sizeof(GRPC_ACCEPT_ENCODING) - 1),
    };
    nghttp2_data_provider prd;
    prd.source.ptr = st;
    prd.read_callback = read_response;
    st->answered = 1;
    if (nghttp2_submit_response(c->sess, st->id, nv, sizeof(nv) / sizeof(nv[0]), &prd) != 0) {
        nghttp2_submit_rst_stream(c->sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
}

/* All request headers are in: decide whether the call can go on. */
static void judge_headers(struct grpc_conn *c, struct grpc_stream *st)
{
    const struct o2d_grpc_config *cfg = &c->w->srv->cfg;
    int64_t limit = cfg->request_timeout_ms;
    if (st->timeout_ms >= 0 && (limit <= 0 || st->timeout_ms < limit)) {
        limit = st->timeout_ms;
    }
    st->deadline_ms = limit > 0 ? st->started_ms + limit : 0;

    const char *why = NULL;
    struct ingest *ing = c->w->srv->ing;
    if (!st->headers_too_large && ingest_auth_required(ing, O2D_TRANSPORT_GRPC)) {
        if (!st->auth_seen) {
            st->auth_rv = ingest_authenticate(ing, O2D_TRANSPORT_GRPC, NULL, 0, &st->tenant, &why);
            st->auth_reason = why;
        }
        if (st->auth_rv == O2D_OK) {
            ingest_share_set_tenant(&c->share, st->tenant);
        }
    }
    if (st->headers_too_large) {
        answer_error(c, st, O2D_ERR_TOO_LARGE, reason_headers_too_large, 200);
    } else if (st->auth_rv != O2D_OK) {
        /* Before the body is read: a sender without a valid token costs a HEADERS frame. */
        answer_error(c, st, st->auth_rv, st->auth_reason, 200);
    } else if (ingest_tenant_admit(ing, st->tenant, &why) != O2D_OK) {
        answer_error(c, st, O2D_ERR_BUSY, why, 200);
    } else if (!st->ct_ok) {
        /* PROTOCOL-HTTP2: 415 keeps plain HTTP clients from mistaking it for a success. */
        answer_error(c, st, O2D_ERR_UNSUPPORTED, reason_content_type, 415);
    } else if (!st->method_ok) {
        answer_error(c, st, O2D_ERR_NOT_FOUND, reason_method, 200);
    } else if (!st->path_ok) {
        answer_error(c, st, O2D_ERR_NOT_FOUND, reason_unknown_method, 200);
    } else if (st->enc == GRPC_ENC_OTHER) {
        answer_error(c, st, O2D_ERR_UNSUPPORTED, grpc_reason_bad_encoding, 200);
    } else if (ingest_queue_admit(ing, O2D_TRANSPORT_GRPC, (int)st->sig, &why) != O2D_OK) {
        /* A full exporter queue: refused at its headers (counted there), its DATA unread. */
        answer_counted(c, st, O2D_ERR_BUSY, why, 200);
    }
}

static void park(struct grpc_conn *c, struct grpc_stream *st, struct grpc_job *j);

static void answer_result(struct grpc_conn *c, struct grpc_stream *st,
                          const struct ingest_result *res)
{
    if (res->status != O2D_OK) {
        answer_error(c, st, res->status, res->reason, 200);
    } else if (!st->answered) {
        answer_ok(c, st, res);
    }
}

/* END_STREAM arrived: ingest the message and answer (or park it until its syncs ran). */
static void finish_request(struct grpc_conn *c, struct grpc_stream *st)
{
    struct grpc_server *s = c->w->srv;
    const char *reason = NULL;
    if (st->answered) {
        return;
    }
    int rv = grpc_frame_finish(&st->frame, &reason);
    if (rv != O2D_OK) {
        answer_error(c, st, rv, reason, 200);
        return;
    }
    struct ingest_result res;
    struct grpc_job *j = NULL;
    if (s->waiter != NULL) {
        j = o2d_calloc(1, sizeof(*j));
        if (j == NULL) {
            answer_error(c, st, O2D_ERR_NOMEM, reason_nomem, 200);
            return;
        }
        o2d_defer_begin(&j->wait.ws);
    }
    const uint8_t *body = st->body.data != NULL ? st->body.data : (const uint8_t *)"";
    st->ingested = 1;
    ingest_request_as(s->ing, st->tenant, O2D_TRANSPORT_GRPC, st->sig, OTLP_ENC_PROTOBUF, st->comp,
                      body, st->body.len, s->cfg.max_recv_msg_size, j != NULL ? &j->res : &res);
    release_body(s, st);
    if (j != NULL) {
        o2d_defer_stop();
        if (o2d_waitset_pending(&j->wait.ws)) {
            park(c, st, j);
            return;
        }
        res = j->res;
        o2d_free(j);
    }
    answer_result(c, st, &res);
}

/* ---- nghttp2 callbacks: per-stream problems never fail the session ---- */

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *user_data)
{
    struct grpc_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    struct grpc_stream *st = o2d_calloc(1, sizeof(*st));
    if (st == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM for this stream only */
    }
    size_t max = c->w->srv->cfg.max_recv_msg_size;
    st->conn = c;
    st->id = frame->hd.stream_id;
    st->timeout_ms = -1;
    st->tenant = -1;
    st->started_ms = o2d_now_ms();
    grpc_frame_init(&st->frame, max);
    o2d_buf_init(&st->body, 0); /* raised with each reservation */
    o2d_buf_init(&st->resp, GRPC_RESPONSE_MAX);
    if (nghttp2_session_set_stream_user_data(sess, st->id, st) != 0) {
        o2d_free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->next = c->streams;
    if (c->streams != NULL) {
        c->streams->prev = st;
    }
    c->streams = st;
    c->nstreams++;
    idle_unlink(c); /* a request in progress: not to be evicted */
    return 0;
}

static int name_is(const uint8_t *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(name, lit, n) == 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct grpc_stream *st = get_stream(sess, frame->hd.stream_id);
    if (st == NULL || st->headers_done || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0; /* trailers from the client carry nothing we use */
    }
    /* The RFC 9113 accounting: name + value + 32 per field. */
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > GRPC_HEADER_LIST_MAX) {
        st->headers_too_large = 1;
        return 0;
    }
    const char *v = (const char *)value;
    if (name_is(name, namelen, ":method")) {
        st->method_ok = valuelen == 4 && memcmp(v, "POST", 4) == 0;
    } else if (name_is(name, namelen, ":path")) {
        st->path_ok = grpc_path_signal(v, valuelen, &st->sig) == O2D_OK;
    } else if (name_is(name, namelen, "content-type")) {
        st->ct_ok = grpc_content_type_ok(v, valuelen);
    } else if (name_is(name, namelen, "grpc-encoding")) {
        st->enc = grpc_encoding_parse(v, valuelen);
    } else if (name_is(name, namelen, "authorization")) {
        struct grpc_conn *c = user_data;
        struct ingest *ing = c->w->srv->ing;
        if (!st->auth_seen && ingest_auth_required(ing, O2D_TRANSPORT_GRPC)) {
            /* Judged here, as it arrives: the value is never kept. */
            st->auth_seen = 1;
            st->auth_rv = ingest_authenticate(ing, O2D_TRANSPORT_GRPC, v, valuelen, &st->tenant,
                                              &st->auth_reason);
        }
    } else if (name_is(name, namelen, "grpc-timeout")) {
        int64_t ms;
        if (grpc_timeout_parse(v, valuelen, &ms) == O2D_OK) {
            st->timeout_ms = ms > 0 ? ms : 1; /* "0m" has already expired; 0 means none */
        }
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
                              size_t len, void *user_data)
{
    struct grpc_conn *c = user_data;
    struct grpc_server *s = c->w->srv;
    struct grpc_stream *st = get_stream(sess, id);
    if (st == NULL || st->answered) {
        return 0; /* already answered: the rest of the body is dropped unread */
    }
    struct grpc_frame_span span;
    const char *reason = NULL;
    int rv = grpc_frame_feed(&st->frame, data, len, &span, &reason);
    if (rv != O2D_OK) {
        answer_error(c, st, rv, reason, 200);
        return 0;
    }
    if (span.prefix_done) {
        rv = grpc_frame_compression(st->frame.compressed, st->enc, &st->comp, &reason);
        if (rv != O2D_OK) {
            answer_error(c, st, rv, reason, 200);
            return 0;
        }
        /* A message that could not fit now is refused before its bytes are read; passing
         * reserves nothing, so a length prefix alone holds no memory. */
        rv = st->frame.msg_len > 0
                 ? ingest_share_admit(s->ing, &c->share, st->frame.msg_len, &reason)
                 : O2D_OK;
        if (rv != O2D_OK) {
            answer_error(c, st, rv, reason, 200);
            return 0;
        }
    }
    if (span.msg_n == 0) {
        return 0;
    }
    size_t need = st->body.len + span.msg_n;
    if (need > st->reserved) {
        size_t want = ingest_grow_to(st->reserved, need, st->frame.msg_len);
        int rrv = ingest_share_reserve(s->ing, &c->share, want - st->reserved, &reason);
        if (rrv != O2D_OK) {
            answer_error(c, st, rrv, reason, 200);
            return 0;
        }
        st->reserved = want;
        st->body.max = want;
    }
    if (st->body.data == NULL) {
        /* A kept buffer, the one that best holds the whole message: its capacity may pass
         * what is reserved, never its length. */
        body_pool_take(&c->w->spare, &st->body, st->frame.msg_len, o2d_now_ms());
    }
    if (span.msg_n > st->body.max - st->body.len ||
        o2d_buf_append(&st->body, span.msg, span.msg_n) != O2D_OK) {
        answer_error(c, st, O2D_ERR_NOMEM, reason_nomem, 200);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *user_data)
{
    struct grpc_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    struct grpc_stream *st = get_stream(sess, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        st->headers_done = 1;
        judge_headers(c, st);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->request_done = 1;
        finish_request(c, st);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    struct grpc_stream *st = get_stream(sess, frame->hd.stream_id);
    if (st != NULL && st->rst_after_send && !st->request_done) {
        st->rst_after_send = 0;
        nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *user_data)
{
    struct grpc_conn *c = user_data;
    struct grpc_stream *st = get_stream(sess, id);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(sess, id, NULL);
        free_stream(c, st);
        if (c->nstreams == 0) {
            c->idle_since_ms = o2d_now_ms();
            idle_link(c);
        }
    }
    return 0;
}

/* ---- connections ---- */

static void set_pending(struct grpc_conn *c, int on)
{
    if (c->pending != on) {
        c->pending = on;
        if (on) {
            c->w->npending++;
        } else {
            c->w->npending--;
        }
    }
}

static void close_conn(struct grpc_conn *c)
{
    struct grpc_worker *w = c->w;
    set_pending(c, 0);
    idle_unlink(c);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl != NULL) {
        /* close_notify, best effort and without waiting for the peer's: HTTP/2 has already
         * said goodbye with GOAWAY, and its frames carry their own lengths. */
        if (!c->handshaking && !c->tls_dead) {
            ERR_clear_error();
            SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    close(c->fd);
    /* nghttp2_session_del() calls no stream-close callback: free our streams ourselves. */
    nghttp2_session_del(c->sess);
    while (c->streams != NULL) {
        free_stream(c, c->streams);
    }
    o2d_buf_cleanup(&c->out);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    acceptor_release(w->srv->acc, w->index);
    if (c->njobs > 0) {
        /* the sync waiter still has requests of it: freed when the last comes back */
        c->closed = 1;
        c->prev = NULL;
        c->next = w->zombies;
        w->zombies = c;
        return;
    }
    o2d_free(c);
}

/* What conn_recv() and conn_send() return besides a byte count. */
#define IO_AGAIN 0  /* would block; for TLS, tls_*_wants_* says on what */
#define IO_EOF   -1 /* the peer closed */
#define IO_ERR   -2

/* Lines about one client's connection, by reason: a flood of bad clients stays a few lines. */
static struct o2d_log_limiter conn_log_limit;

/* A TLS error that ends the connection: logged at debug level (scanners and plaintext
 * clients hitting the port are not the operator's problem), never followed by
 * close_notify. */
static int tls_fail(struct grpc_conn *c, const char *what, int sslerr)
{
    c->tls_dead = 1;
    const char *why = sslerr == SSL_ERROR_SYSCALL && errno != 0
                          ? strerror(errno)
                          : o2d_tls_last_error("connection closed");
    struct o2d_logline l;
    o2d_log_begin_limited(&l, O2D_LOG_DEBUG, what, &conn_log_limit, why, o2d_now_ms());
    o2d_log_cstr(&l, "server", "grpc");
    o2d_log_cstr(&l, "reason", why);
    o2d_log_end(&l);
    return IO_ERR;
}

/* Reads into buf: a byte count, or IO_AGAIN, IO_EOF, IO_ERR. */
static ssize_t conn_recv(struct grpc_conn *c, uint8_t *buf, size_t len)
{
    if (c->ssl == NULL) {
        for (;;) {
            ssize_t n = recv(c->fd, buf, len, 0);
            if (n > 0) {
                return n;
            }
            if (n == 0) {
                return IO_EOF;
            }
            if (errno != EINTR) {
                return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
            }
        }
    }
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(c->ssl, buf, (int)len);
    if (n > 0) {
        c->tls_read_wants_write = 0;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->tls_read_wants_write = 0;
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->tls_read_wants_write = 1;
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
        return IO_EOF;
    default:
        return tls_fail(c, "tls read failed", e);
    }
}

/* Writes from buf: a byte count, or IO_AGAIN, IO_ERR. */
static ssize_t conn_send(struct grpc_conn *c, const uint8_t *buf, size_t len)
{
    if (c->ssl == NULL) {
        for (;;) {
            ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
            if (n >= 0) {
                return n;
            }
            if (errno != EINTR) {
                return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
            }
        }
    }
    /* A retry after WANT_WRITE passes the same leading bytes, possibly moved and with more
     * behind them: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER and a length that never shrinks. */
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) {
        c->tls_write_wants_read = 0;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_WRITE:
        c->tls_write_wants_read = 0;
        return IO_AGAIN;
    case SSL_ERROR_WANT_READ:
        c->tls_write_wants_read = 1;
        return IO_AGAIN;
    default:
        return tls_fail(c, "tls write failed", e);
    }
}

/*
 * Moves frames from nghttp2 to the socket. 0 when everything is written, 1 when the socket
 * would block with output pending, -1 when the connection is broken.
 */
static int flush_conn(struct grpc_conn *c)
{
    for (;;) {
        if (c->out_off > 0) {
            size_t left = c->out.len - c->out_off;
            memmove(c->out.data, c->out.data + c->out_off, left);
            c->out.len = left;
            c->out_off = 0;
        }
        while (c->out.len < GRPC_OUT_HIGH) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->sess, &d);
            if (n < 0) {
                return -1;
            }
            if (n == 0) {
                break;
            }
            if (o2d_buf_append(&c->out, d, (size_t)n) != O2D_OK) {
                return -1;
            }
        }
        if (c->out.len == 0) {
            return 0;
        }
        while (c->out_off < c->out.len) {
            ssize_t n = conn_send(c, c->out.data + c->out_off, c->out.len - c->out_off);
            if (n == IO_AGAIN) {
                return 1;
            }
            if (n < 0) {
                return -1;
            }
            c->out_off += (size_t)n;
        }
        c->out.len = 0;
        c->out_off = 0;
    }
}

static int set_events(struct grpc_conn *c, uint32_t events)
{
    if (c->events == events) {
        return 0;
    }
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        return -1;
    }
    c->events = events;
    return 0;
}

/* After any activity: write what is pending, then close or re-arm. */
static void settle_conn(struct grpc_conn *c)
{
    int rv = flush_conn(c);
    if (rv < 0) {
        close_conn(c);
        return;
    }
    if (rv == 0 && (c->close_when_flushed || (!nghttp2_session_want_read(c->sess) &&
                                              !nghttp2_session_want_write(c->sess)))) {
        close_conn(c);
        return;
    }
    /* Output backed up: stop reading until the socket drains. OpenSSL may need the other
     * direction first (tls_*_wants_*; always 0 on plaintext). */
    c->out_blocked = rv == 1;
    uint32_t events = c->out_blocked ? (c->tls_write_wants_read ? EPOLLIN : EPOLLOUT)
                                     : (c->tls_read_wants_write ? EPOLLOUT : EPOLLIN);
    if (set_events(c, events) != 0) {
        close_conn(c);
        return;
    }
    /* Bytes OpenSSL already took off the socket wake no epoll: read them from the loop. */
    set_pending(c, c->ssl != NULL && !c->out_blocked && c->tls_unread && SSL_has_pending(c->ssl));
}

/* ---- the sync waiter ---- */

static void job_done(struct sync_wait *sw, int status);

/* The stream is answered when its job comes back from the waiter. */
static void park(struct grpc_conn *c, struct grpc_stream *st, struct grpc_job *j)
{
    struct grpc_worker *w = c->w;
    j->conn = c;
    j->stream_id = st->id;
    j->wait.done = job_done;
    st->in_job = 1;
    c->njobs++;
    w->njobs++;
    sync_waiter_park(w->srv->waiter, &j->wait);
}

/* On the waiter's thread: the job goes back to its worker, each answer as soon as its sync
 * ran, with one wake-up for what the worker has not taken yet. */
static void job_done(struct sync_wait *sw, int status)
{
    struct grpc_job *j = (struct grpc_job *)sw;
    if (status != O2D_OK && j->res.status == O2D_OK) {
        /* written, maybe sent, but not durable: the client retries (at least once) */
        j->res.status = O2D_ERR_BUSY;
        j->res.reason = "the disk queue could not sync; retry later";
    }
    struct grpc_worker *w = j->conn->w;
    pthread_mutex_lock(&w->done_mu);
    int was_empty = w->done == NULL;
    j->next = w->done;
    w->done = j;
    pthread_mutex_unlock(&w->done_mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(w->evfd, &one, sizeof(one));
        (void)n; /* fails only when the counter is full: the worker is awake then */
    }
}

/* On the worker: the answers the sync waiter sent back. */
static void take_answers(struct grpc_worker *w)
{
    pthread_mutex_lock(&w->done_mu);
    struct grpc_job *j = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->done_mu);
    while (j != NULL) {
        struct grpc_job *next = j->next;
        struct grpc_conn *c = j->conn;
        c->njobs--;
        w->njobs--;
        if (c->closed) {
            if (c->njobs == 0) {
                struct grpc_conn **pp = &w->zombies;
                while (*pp != c) {
                    pp = &(*pp)->next;
                }
                *pp = c->next;
                o2d_free(c);
            }
        } else {
            struct grpc_stream *st = get_stream(c->sess, j->stream_id);
            if (st != NULL) {
                st->in_job = 0;
                answer_result(c, st, &j->res);
                settle_conn(c); /* may close c: it has no other job in this list then */
            }
        }
        o2d_free(j);
        j = next;
    }
}

/* Reads and feeds nghttp2. -1 when the connection is over (EOF, error, fatal session error). */
static int read_conn(struct grpc_conn *c)
{
    struct grpc_worker *w = c->w;
    c->tls_unread = 0;
    for (int i = 0; i < GRPC_READS_PER_EVENT; i++) {
        ssize_t n = conn_recv(c, w->rbuf, GRPC_READ_BUF);
        if (n == IO_AGAIN) {
            return 0;
        }
        if (n < 0) {
            return -1;
        }
        ssize_t rv = nghttp2_session_mem_recv(c->sess, w->rbuf, (size_t)n);
        if (rv < 0) {
            struct o2d_logline l;
            o2d_log_begin_limited(&l, O2D_LOG_DEBUG, "closing connection", &conn_log_limit,
                                  nghttp2_strerror((int)rv), o2d_now_ms());
            o2d_log_cstr(&l, "server", "grpc");
            o2d_log_cstr(&l, "reason", nghttp2_strerror((int)rv));
            o2d_log_end(&l);
            flush_conn(c); /* a GOAWAY nghttp2 may have queued, best effort */
            return -1;
        }
        h2_track_feed(&c->track, w->rbuf, (size_t)n, o2d_now_ms());
        int f = flush_conn(c);
        if (f != 0) {
            c->tls_unread = 1;
            return f < 0 ? -1 : 0;
        }
        /* A short recv() drained the socket; a short SSL_read() only ended a record. */
        if ((size_t)n < GRPC_READ_BUF && c->ssl == NULL) {
            return 0;
        }
    }
    c->tls_unread = 1;
    return 0;
}

static int start_session(struct grpc_conn *c);

/* Drives the TLS handshake; once done, starts HTTP/2 and reads what already came. */
static void handshake_conn(struct grpc_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshaking = 0;
        if (start_session(c) != O2D_OK) {
            close_conn(c);
            return;
        }
        /* The client's preface may sit in OpenSSL already, where epoll cannot see it. */
        if (read_conn(c) < 0) {
            close_conn(c);
            return;
        }
        settle_conn(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (set_events(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) != 0) {
            close_conn(c);
        }
        return;
    }
    tls_fail(c, "tls handshake failed", e);
    close_conn(c);
}

static void handle_conn_event(struct grpc_conn *c, uint32_t events)
{
    if (events & EPOLLERR) {
        close_conn(c);
        return;
    }
    if (c->handshaking) {
        handshake_conn(c); /* a hang-up shows there as an error */
        return;
    }
    /* A write OpenSSL cannot finish before it reads (a handshake message from the peer)
     * is unblocked by reading, even though output is backed up. */
    if ((!c->out_blocked || c->tls_write_wants_read) &&
        (events & (EPOLLIN | EPOLLOUT | EPOLLHUP))) {
        if (read_conn(c) < 0) {
            close_conn(c);
            return;
        }
    } else if (events & EPOLLHUP) {
        close_conn(c);
        return;
    }
    settle_conn(c);
}

/* Connections whose bytes wait in OpenSSL: served as if epoll had said readable. */
static void serve_pending(struct grpc_worker *w)
{
    for (struct grpc_conn *c = w->conns, *next; c != NULL && w->npending > 0; c = next) {
        next = c->next;
        if (c->pending) {
            set_pending(c, 0);
            handle_conn_event(c, EPOLLIN);
        }
    }
}

/* nghttp2 allocates through the same wrapper as the rest of otel2dd (failure injection). */
static void *mem_malloc(size_t n, void *ud)
{
    return o2d_malloc(n);
}

static void mem_free(void *p, void *ud)
{
    o2d_free(p);
}

static void *mem_calloc(size_t count, size_t size, void *ud)
{
    return o2d_calloc(count, size);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    return o2d_realloc(p, n);
}

static nghttp2_mem grpc_mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

/* The nghttp2 session of c, with our SETTINGS queued (sent by the next settle_conn()). */
static int start_session(struct grpc_conn *c)
{
    struct grpc_server *s = c->w->srv;
    if (nghttp2_session_server_new3(&c->sess, s->cbs, c, NULL, &grpc_mem) != 0) {
        return O2D_ERR_NOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, GRPC_HEADER_LIST_MAX},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GRPC_STREAM_WINDOW},
    };
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, GRPC_CONN_WINDOW) !=
            0) {
        return O2D_ERR_NOMEM; /* close_conn() deletes the session */
    }
    c->idle_since_ms = o2d_now_ms();
    c->session_ms = c->idle_since_ms;
    h2_track_init(&c->track);
    return O2D_OK;
}

static int new_conn(struct grpc_worker *w, int fd)
{
    struct grpc_server *s = w->srv;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct grpc_conn *c = o2d_calloc(1, sizeof(*c));
    if (c == NULL) {
        return O2D_ERR_NOMEM;
    }
    c->w = w;
    c->fd = fd;
    c->created_ms = o2d_now_ms();
    c->idle_since_ms = c->created_ms;
    ingest_share_init(s->ing, &c->share, s->cfg.max_recv_msg_size);
    o2d_buf_init(&c->out, GRPC_OUT_MAX);
    if (s->tls.on) {
        c->ssl = SSL_new(s->tls.ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
            SSL_free(c->ssl);
            ERR_clear_error();
            o2d_free(c);
            return O2D_ERR_NOMEM;
        }
        SSL_set_accept_state(c->ssl);
        c->handshaking = 1;
    } else if (start_session(c) != O2D_OK) {
        nghttp2_session_del(c->sess);
        o2d_free(c);
        return O2D_ERR_NOMEM;
    }
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        nghttp2_session_del(c->sess);
        SSL_free(c->ssl);
        o2d_free(c);
        return O2D_ERR_SYSTEM;
    }
    c->events = EPOLLIN;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    idle_link(c);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_DEBUG, "connection");
    o2d_log_cstr(&l, "server", "grpc");
    o2d_log_int(&l, "worker", w->index);
    o2d_log_end(&l);
    if (c->handshaking) {
        /* The ClientHello may be in already: the client sends it right after connecting. */
        handshake_conn(c);
    } else {
        settle_conn(c); /* our SETTINGS go out at once */
    }
    return O2D_OK;
}

/* On the acceptor thread: queue fd for worker `worker` and wake it. Takes fd. */
static int assign_conn(void *ctx, int worker, int fd, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    struct grpc_worker *w = &((struct grpc_server *)ctx)->workers[worker];
    int queued = 0;
    pthread_mutex_lock(&w->inbox_mu);
    if (w->ninbox < w->inbox_cap) {
        w->inbox[w->ninbox++] = fd;
        queued = 1;
    }
    pthread_mutex_unlock(&w->inbox_mu);
    if (!queued) {
        close(fd);
        return O2D_ERR_BUSY;
    }
    uint64_t one = 1;
    ssize_t n = write(w->evfd, &one, sizeof(one));
    (void)n; /* fails only when the counter is full, and then the worker is awake anyway */
    return O2D_OK;
}

/* On the acceptor thread: a newcomer the acceptor refused, for the closed-connection count. */
static void refused_conn(void *ctx, enum acceptor_refusal why)
{
    struct grpc_server *s = ctx;
    ingest_count_conn_close(s->ing, O2D_TRANSPORT_GRPC,
                            why == ACCEPTOR_REFUSED_FULL ? INGEST_CONN_REFUSED_FULL
                                                         : INGEST_CONN_REFUSED_NO_FD);
}

/*
 * On the acceptor thread, at max_connections: asks the worker whose oldest idle connection
 * has been idle longest to close it. What the workers published may be a moment old; a
 * connection that got busy meanwhile is not closed, and the newcomer waiting for its slot is
 * refused after ACCEPTOR_WAIT_MS.
 */
static int evict_conn(void *ctx)
{
    struct grpc_server *s = ctx;
    struct grpc_worker *best = NULL;
    int64_t best_ms = INT64_MAX;
    for (int i = 0; i < s->nworkers; i++) {
        struct grpc_worker *w = &s->workers[i];
        size_t idle = atomic_load(&w->idle_pub);
        unsigned asked = atomic_load(&w->evict_req);
        int64_t since = atomic_load(&w->oldest_idle_pub);
        if (idle > asked && (best == NULL || since < best_ms)) {
            best = w;
            best_ms = since;
        }
    }
    if (best == NULL) {
        return O2D_ERR_BUSY;
    }
    atomic_fetch_add(&best->evict_req, 1);
    uint64_t one = 1;
    ssize_t n = write(best->evfd, &one, sizeof(one));
    (void)n; /* fails only when the counter is full, and then the worker is awake anyway */
    return O2D_OK;
}

/* On the worker: takes what the acceptor queued into the event loop. */
static void adopt_inbox(struct grpc_worker *w)
{
    struct grpc_server *s = w->srv;
    for (;;) {
        int fds[GRPC_ADOPT_BATCH];
        size_t n = 0;
        pthread_mutex_lock(&w->inbox_mu);
        n = w->ninbox < GRPC_ADOPT_BATCH ? w->ninbox : GRPC_ADOPT_BATCH;
        memcpy(fds, w->inbox, n * sizeof(fds[0]));
        memmove(w->inbox, w->inbox + n, (w->ninbox - n) * sizeof(fds[0]));
        w->ninbox -= n;
        pthread_mutex_unlock(&w->inbox_mu);
        if (n == 0) {
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (new_conn(w, fds[i]) != O2D_OK) {
                close(fds[i]);
                acceptor_release(s->acc, w->index);
            }
        }
    }
}

/* Starts a graceful GOAWAY: a shutdown notice now, the final GOAWAY one tick later. */
static void begin_drain(struct grpc_conn *c, int64_t now)
{
    if (c->drain != DRAIN_NONE || c->close_when_flushed) {
        return;
    }
    if (nghttp2_submit_shutdown_notice(c->sess) == 0) {
        c->drain = DRAIN_NOTICE;
        c->drain_ms = now;
    }
}

static void final_goaway(struct grpc_conn *c, int64_t now)
{
    nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->sess), NGHTTP2_NO_ERROR, NULL,
                          0);
    c->drain = DRAIN_GOAWAY;
    c->drain_ms = now;
}

/* Closes c on the server's own initiative, counted: a GOAWAY saying why goes out if the
 * socket takes it at once; the client is not waited for. */
static void close_early(struct grpc_conn *c, enum ingest_conn_close why, const char *reason)
{
    if (c->sess != NULL && !c->handshaking) {
        nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->sess), NGHTTP2_NO_ERROR,
                              (const uint8_t *)reason, strlen(reason));
        flush_conn(c);
    }
    ingest_count_conn_close(c->w->srv->ing, O2D_TRANSPORT_GRPC, why);
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_DEBUG, "connection closed");
    o2d_log_cstr(&l, "server", "grpc");
    o2d_log_cstr(&l, "reason", reason);
    o2d_log_end(&l);
    close_conn(c);
}

/* The preface is late, or a header block begun is not finished: read_header_timeout. */
static int header_late(const struct grpc_conn *c, int64_t limit, int64_t now)
{
    if (limit <= 0) {
        return 0;
    }
    return (!c->track.preface_done && now - c->session_ms >= limit) ||
           (c->track.block_start_ms > 0 && now - c->track.block_start_ms >= limit);
}

/* How long a TLS handshake may take. */
static int64_t handshake_limit(const struct o2d_grpc_config *cfg)
{
    int64_t idle = cfg->max_connection_idle_ms;
    return idle > 0 && idle < GRPC_HANDSHAKE_MS ? idle : GRPC_HANDSHAKE_MS;
}

static void tick_conn(struct grpc_conn *c, int64_t now)
{
    const struct o2d_grpc_config *cfg = &c->w->srv->cfg;
    if (c->handshaking) {
        if (now - c->created_ms >= handshake_limit(cfg)) {
            struct o2d_logline l;
            o2d_log_begin_limited(&l, O2D_LOG_DEBUG, "tls handshake timed out", &conn_log_limit,
                                  "tls handshake timed out", now);
            o2d_log_cstr(&l, "server", "grpc");
            o2d_log_int(&l, "limit_ms", handshake_limit(cfg));
            o2d_log_end(&l);
            close_conn(c);
        }
        return;
    }
    if (header_late(c, cfg->read_header_timeout_ms, now)) {
        close_early(c, INGEST_CONN_HEADER_TIMEOUT,
                    c->track.preface_done ? "read_header_timeout: header block unfinished"
                                          : "read_header_timeout: no client preface");
        return;
    }
    for (struct grpc_stream *st = c->streams, *next; st != NULL; st = next) {
        next = st->next;
        if (!st->answered && !st->request_done && st->deadline_ms > 0 && now >= st->deadline_ms) {
            answer_error(c, st, O2D_ERR_TIMEOUT, reason_deadline, 200);
        }
    }
    switch (c->drain) {
    case DRAIN_NONE:
        if (cfg->max_connection_age_ms > 0 && now - c->created_ms >= cfg->max_connection_age_ms) {
            begin_drain(c, now);
        } else if (c->nstreams == 0 && cfg->max_connection_idle_ms > 0 && !c->close_when_flushed &&
                   now - c->idle_since_ms >= cfg->max_connection_idle_ms) {
            nghttp2_submit_goaway(c->sess, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->sess),
                                  NGHTTP2_NO_ERROR, (const uint8_t *)"idle", 4);
            c->close_when_flushed = 1;
        }
        break;
    case DRAIN_NOTICE:
        if (now - c->drain_ms >= GRPC_NOTICE_MS) {
            final_goaway(c, now);
        }
        break;
    case DRAIN_GOAWAY:
        /* On shutdown the server-wide deadline applies instead of the grace. */
        if (!c->w->stopping && now - c->drain_ms >= cfg->max_connection_age_grace_ms) {
            close_conn(c);
            return;
        }
        break;
    }
    settle_conn(c);
}

static void tick(struct grpc_worker *w, int64_t now)
{
    body_pool_trim(&w->spare, now, GRPC_SPARE_IDLE_MS);
    for (struct grpc_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        tick_conn(c, now);
    }
}

/* The eventfd fired: adopt what was handed over, then see whether shutdown began. */
static void wake_up(struct grpc_worker *w)
{
    uint64_t v;
    /* Reset before looking at the inbox: a socket queued after the look wakes us again. */
    while (read(w->evfd, &v, sizeof(v)) > 0) {
    }
    if (w->srv->waiter != NULL) {
        take_answers(w);
    }
    /* Evictions before adopting: a connection just handed over is read once before it can
     * be evicted (its request may be in already). The acceptor holds a newcomer until the
     * evicted slots come back, and asks again while only the inbox holds idle ones. Each
     * request is taken off only after its connection left the published idle count, so the
     * acceptor never sees more idle connections than requests can take; one that finds none
     * idle waits for the next wake-up. */
    while (atomic_load(&w->evict_req) > 0 && w->idle_head != NULL) {
        close_early(w->idle_head, INGEST_CONN_EVICTED, "evicted: max_connections reached");
        atomic_fetch_sub(&w->evict_req, 1);
    }
    adopt_inbox(w);
    if (!atomic_load(&w->srv->stopping) || w->stopping) {
        return;
    }
    w->stopping = 1;
    int64_t now = o2d_now_ms();
    for (struct grpc_conn *c = w->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->handshaking) {
            close_conn(c); /* no request can be in flight on it */
            continue;
        }
        begin_drain(c, now);
        settle_conn(c);
    }
}

static void *worker_main(void *arg)
{
    struct grpc_worker *w = arg;
    struct grpc_server *s = w->srv;
    struct epoll_event evs[GRPC_MAX_EVENTS];
    int64_t next_tick = o2d_now_ms() + GRPC_TICK_MS;
    for (;;) {
        int64_t now = o2d_now_ms();
        int timeout = next_tick > now && w->npending == 0 ? (int)(next_tick - now) : 0;
        int n = epoll_wait(w->epfd, evs, GRPC_MAX_EVENTS, timeout);
        int wake = 0;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_wake) {
                wake = 1; /* after the batch: it may close connections the batch names */
            } else {
                handle_conn_event(p, evs[i].events);
            }
        }
        if (w->npending > 0) {
            serve_pending(w);
        }
        if (wake) {
            wake_up(w);
        }
        now = o2d_now_ms();
        if (now >= next_tick) {
            tick(w, now);
            next_tick = now + GRPC_TICK_MS;
        }
        if (w->stopping) {
            /* Parked jobs come back in bounded time (a sync answers or fails):
             * waited for even past the deadline, since they point at their connection. */
            if (w->nconns == 0 && w->njobs == 0) {
                break;
            }
            if (now >= atomic_load(&s->stop_deadline_ms)) {
                while (w->conns != NULL) {
                    close_conn(w->conns);
                }
                if (w->njobs == 0) {
                    break;
                }
            }
        }
    }
    return NULL;
}

/* ---- the server ---- */

static int online_threads(int per_cpu, int max)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    n *= per_cpu > 1 ? per_cpu : 1;
    return n > max ? max : (int)n;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

int grpc_server_new(struct grpc_server **out, const struct o2d_grpc_config *cfg, struct ingest *ing,
                    char *err, size_t errlen)
{
    int rv = O2D_ERR_SYSTEM;
    struct grpc_server *s = o2d_calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "grpc: out of memory");
        return O2D_ERR_NOMEM;
    }
    s->cfg = *cfg;
    s->ing = ing;
    s->lfd = -1;
    if (s->cfg.max_concurrent_streams == 0) {
        s->cfg.max_concurrent_streams = 100;
    }
    if (s->cfg.max_connections == 0) {
        s->cfg.max_connections = 1024;
    }
    if (s->cfg.max_recv_msg_size == 0) {
        s->cfg.max_recv_msg_size = 4 * 1024 * 1024;
    }
    /* The 4-byte Message-Length caps what one gRPC message can declare. */
    if (s->cfg.max_recv_msg_size > UINT32_MAX) {
        s->cfg.max_recv_msg_size = UINT32_MAX;
    }
    /* Certificate problems stop the start before anything listens. */
    rv = o2d_tls_load(&s->tls, "receivers.otlp.protocols.grpc.tls", s->cfg.tls_cert_file,
                      s->cfg.tls_key_file, O2D_TLS_ALPN_H2, err, errlen);
    if (rv == O2D_OK) {
        rv = o2d_tls_client_ca(&s->tls, "receivers.otlp.protocols.grpc.tls",
                               s->cfg.tls_client_ca_file, err, errlen);
    }
    if (rv != O2D_OK) {
        goto out;
    }
    rv = O2D_ERR_SYSTEM;
    s->nworkers = online_threads(s->cfg.workers_per_cpu, GRPC_MAX_WORKERS);
    size_t per_worker =
        (s->cfg.max_connections + (uint32_t)s->nworkers - 1) / (uint32_t)s->nworkers;
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].epfd = -1;
        s->workers[i].evfd = -1;
    }
    s->cbs = make_callbacks();
    if (s->cbs == NULL) {
        snprintf(err, errlen, "grpc: out of memory");
        rv = O2D_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < s->nworkers; i++) {
        struct grpc_worker *w = &s->workers[i];
        w->srv = s;
        w->index = i;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        w->rbuf = o2d_malloc(GRPC_READ_BUF);
        body_pool_init(&w->spare, GRPC_SPARE_MAX, GRPC_SPARE_BYTES);
        w->inbox = o2d_malloc(per_worker * sizeof(w->inbox[0]));
        w->inbox_cap = per_worker;
        w->inbox_mu_ok = pthread_mutex_init(&w->inbox_mu, NULL) == 0;
        atomic_init(&w->idle_pub, 0);
        atomic_init(&w->oldest_idle_pub, INT64_MAX);
        atomic_init(&w->evict_req, 0);
        w->done_mu_ok = pthread_mutex_init(&w->done_mu, NULL) == 0;
        if (w->epfd < 0 || w->evfd < 0 || w->rbuf == NULL || w->inbox == NULL || !w->inbox_mu_ok ||
            !w->done_mu_ok) {
            snprintf(err, errlen, "grpc: cannot set up worker %d: %s", i, strerror(errno));
            goto out;
        }
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = &tag_wake;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) != 0) {
            snprintf(err, errlen, "grpc: epoll_ctl: %s", strerror(errno));
            goto out;
        }
    }
    rv = o2d_listen(s->cfg.endpoint, GRPC_LISTEN_BACKLOG, &s->lfd, &s->port, err, errlen);
    if (rv != O2D_OK) {
        goto out;
    }
    struct acceptor_config acfg = {
        .server = "grpc",
        .fd = s->lfd,
        .nworkers = s->nworkers,
        .max_connections = s->cfg.max_connections,
        .assign = assign_conn,
        .evict = evict_conn,
        .refused = refused_conn,
        .ctx = s,
    };
    rv = acceptor_new(&s->acc, &acfg);
    if (rv != O2D_OK) {
        snprintf(err, errlen, "grpc: cannot set up the acceptor: %s", o2d_strerror(rv));
        goto out;
    }
    struct o2d_logline l;
    o2d_log_begin(&l, O2D_LOG_INFO, "listening");
    o2d_log_cstr(&l, "server", "grpc");
    o2d_log_cstr(&l, "endpoint", s->cfg.endpoint);
    o2d_log_int(&l, "port", s->port);
    o2d_log_int(&l, "workers", s->nworkers);
    if (s->cfg.defer_syncs) {
        o2d_log_raw(&l, "sync_waiter", "true", 4);
    }
    o2d_log_raw(&l, "tls", s->tls.on ? "true" : "false", s->tls.on ? 4 : 5);
    o2d_log_end(&l);
    *out = s;
    s = NULL;
    rv = O2D_OK;
out:
    grpc_server_free(s);
    return rv;
}

int grpc_server_start(struct grpc_server *s)
{
    /* Workers take no signals: the process handles them on its main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rv = O2D_OK;
    if (s->cfg.defer_syncs) {
        rv = sync_waiter_new(&s->waiter);
        if (rv != O2D_OK) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            o2d_logf(O2D_LOG_ERROR, "grpc: cannot start the sync waiter: %s", strerror(errno));
            return rv;
        }
    }
    for (int i = 0; i < s->nworkers && rv == O2D_OK; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            rv = O2D_ERR_SYSTEM;
            break;
        }
        s->nstarted++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "grpc: cannot start worker threads: %s", strerror(errno));
        grpc_server_shutdown(s, o2d_now_ms());
        return rv;
    }
    /* Workers first: the acceptor may hand over a connection at once. */
    rv = acceptor_start(s->acc);
    if (rv != O2D_OK) {
        o2d_logf(O2D_LOG_ERROR, "grpc: cannot start the acceptor thread");
        grpc_server_shutdown(s, o2d_now_ms());
    }
    return rv;
}

uint16_t grpc_server_port(const struct grpc_server *s)
{
    return s->port;
}

void grpc_server_shutdown(struct grpc_server *s, int64_t deadline_ms)
{
    if (s == NULL || s->joined) {
        return;
    }
    /* No connection is handed over once the acceptor has stopped; new connection attempts
     * are refused from the shutdown() on. What is still in an inbox is adopted and drained. */
    acceptor_stop(s->acc);
    if (s->lfd >= 0) {
        shutdown(s->lfd, SHUT_RDWR);
    }
    atomic_store(&s->stop_deadline_ms, deadline_ms);
    atomic_store(&s->stopping, 1);
    uint64_t one = 1;
    for (int i = 0; i < s->nstarted; i++) {
        ssize_t n = write(s->workers[i].evfd, &one, sizeof(one));
        (void)n;
    }
    for (int i = 0; i < s->nstarted; i++) {
        pthread_join(s->workers[i].thread, NULL);
    }
    sync_waiter_free(s->waiter); /* the workers waited for every job they made */
    s->waiter = NULL;
    s->joined = 1;
}

void grpc_server_free(struct grpc_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->nstarted > 0) {
        grpc_server_shutdown(s, o2d_now_ms());
    }
    acceptor_stop(s->acc);
    sync_waiter_free(s->waiter); /* the workers waited for every job they made */
    s->waiter = NULL;
    for (int i = 0; i < s->nworkers; i++) {
        struct grpc_worker *w = &s->workers[i];
        while (w->conns != NULL) {
            close_conn(w->conns);
        }
        if (w->done_mu_ok) {
            pthread_mutex_destroy(&w->done_mu);
        }
        for (size_t j = 0; j < w->ninbox; j++) {
            close(w->inbox[j]);
        }
        o2d_free(w->inbox);
        if (w->inbox_mu_ok) {
            pthread_mutex_destroy(&w->inbox_mu);
        }
        if (w->epfd >= 0) {
            close(w->epfd);
        }
        if (w->evfd >= 0) {
            close(w->evfd);
        }
        o2d_free(w->rbuf);
        body_pool_cleanup(&w->spare);
    }
    if (s->lfd >= 0) {
        close(s->lfd);
    }
    if (s->cbs != NULL) {
        nghttp2_session_callbacks_del(s->cbs);
    }
    acceptor_free(s->acc);
    o2d_tls_cleanup(&s->tls);
    o2d_free(s);
}
