/*
 * loadgen: the benchmark's load generator. It sends OTLP request bodies read from a bodies
 * file, in rotation, over HTTP/1.1 keep-alive (plain sockets, one request at a time per
 * connection) or gRPC (h2c with prior knowledge through libnghttp2, -m concurrent streams per
 * connection), from -t threads with one epoll loop each, and prints one JSON object: requests
 * sent and answered, answers by HTTP status and by grpc-status, transport errors by kind,
 * bytes and spans sent and acknowledged, latency percentiles from a histogram, the measured
 * duration.
 *
 * It replaces h2load for the benchmark because h2load replays one body: every payload then
 * repeats the same spans, and compresses and translates better than real traffic (issue 14).
 *
 * The bodies file (written by tests/bench/gen_bodies.js): the 8 bytes "O2DLOAD1", then
 * records of a 4-byte big-endian length L, a 4-byte big-endian item count (spans, points or
 * log records of the body) and L bytes of protobuf (an Export*ServiceRequest, no gRPC prefix:
 * in --grpc mode loadgen adds the 5-byte uncompressed message prefix itself). Connection k
 * starts at body (k * N / conns) and takes the next body for each request, so with N > 1 no
 * two consecutive requests on a connection carry the same body.
 *
 * --stamp-ids (trace bodies only): every request gets trace and span ids no other request
 * had. At start loadgen finds the offsets of every trace_id, span_id, parent_span_id and link
 * id in each body; per request it copies the body and XORs the low 64 bits of each id with one
 * value of that request's own (parent links stay intact). tests/bench/overload.py needs it to
 * count distinct spans at the sink.
 *
 * What it leaves out: TLS, HTTP/2 over HTTP/1.1 upgrade, compression of its own (a file of
 * gzip'd bodies with -H 'Content-Encoding: gzip' works for HTTP/1.1), retries (a refused
 * request is counted, never sent again: the benchmark wants to know what was acknowledged).
 *
 * Every wait has a deadline: connect and each request time out after --timeout seconds (the
 * connection is closed and reconnected, or the stream reset), and once the run is over the
 * requests in flight get --grace seconds to be answered before they are counted as cut.
 * Memory is the bodies file plus a fixed buffer per connection.
 *
 * Public references: RFC 9112 (HTTP/1.1 message framing), RFC 9113 (HTTP/2), the gRPC over
 * HTTP/2 protocol (github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md: length-prefixed
 * message, grpc-status in trailers or in a trailers-only response), nghttp2's client API.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#define MAGIC           "O2DLOAD1"
#define MAX_FILE_BYTES  (1024LL * 1024 * 1024)
#define MAX_HEADERS     32
#define MAX_STREAMS     1000
#define MAX_CONNS       10000
#define RBUF_SIZE       65536
#define H1_HDR_MAX      16384
#define GRPC_PREFIX     5
#define HIST_SUB        64         /* sub-buckets per power of two: < 1.6 % error */
#define HIST_EXP        40         /* up to 2^40 ns, about 18 minutes */
#define RECONNECT_PAUSE 20000000LL /* ns after a failed connect */

enum err_kind {
    ERR_CONNECT,    /* connect() failed or timed out */
    ERR_CLOSED,     /* the server closed with a request unanswered */
    ERR_TIMEOUT,    /* a request got no answer within --timeout */
    ERR_PROTOCOL,   /* an answer loadgen could not parse, or an HTTP/2 session error */
    ERR_RST_STREAM, /* the server reset a stream (other than REFUSED_STREAM) */
    ERR_REFUSED,    /* REFUSED_STREAM, or a stream above a GOAWAY's last id: never processed */
    ERR_CUT,        /* still in flight when the grace period ended */
    ERR_N
};
static const char *const ERR_NAMES[ERR_N] = {"connect",    "closed",         "timeout", "protocol",
                                             "rst_stream", "refused_stream", "cut"};

struct body {
    const uint8_t *data; /* points into the loaded file */
    uint32_t len;
    uint32_t items;
    uint32_t *ids; /* --stamp-ids: offsets of the 8 id bytes to stamp (owned) */
    size_t nids;
};

struct opts {
    bool grpc;
    int conns, streams, threads;
    double duration_s;
    long long requests; /* -n: 0 = by duration */
    double timeout_s, grace_s;
    const char *headers[MAX_HEADERS];
    int nheaders;
    const char *bodies_path;
    bool stamp_ids;
    char host[256], port[16], path[1024], authority[300];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

struct stats {
    uint64_t sent, answered, ok, bytes_sent, items_sent, items_ok, reconnects;
    uint64_t by_status[600]; /* index: HTTP status; [0]: none */
    uint64_t by_grpc[18];    /* 0..16, [17]: no grpc-status */
    uint64_t errors[ERR_N];
    uint64_t hist[HIST_EXP * HIST_SUB];
    int64_t max_ns;
};

struct worker;

struct req {
    bool used, timed_out;
    int32_t stream_id;
    uint32_t body_idx;
    const uint8_t *data; /* the body as sent: the file's bytes, or `own` once stamped */
    uint8_t *own;        /* --stamp-ids: a copy of the body with this request's ids */
    size_t off;          /* bytes of prefix + body handed to nghttp2 */
    int64_t start_ns;
    int status, grpc_status; /* -1 until seen */
    struct conn *c;
};

enum h1_state { H1_IDLE, H1_SENDING, H1_HEADERS, H1_BODY, H1_CHUNK_SIZE, H1_CHUNK_DATA };

struct conn {
    struct worker *w;
    int fd;
    int index; /* for the starting body */
    uint32_t next_body;
    bool connecting, closing, goaway;
    int64_t connect_deadline, retry_at;
    /* HTTP/1.1 */
    enum h1_state h1;
    char hdr[1024];
    size_t hdr_len, wrote; /* of hdr_len + body length */
    struct req r;          /* the one request */
    char in[H1_HDR_MAX];
    size_t in_len;
    long long body_left; /* content-length left, or chunk bytes left (+2 for CRLF) */
    bool chunked, server_close;
    /* gRPC */
    nghttp2_session *h2;
    struct req *slots; /* streams slots */
    int inflight;
    uint8_t *out; /* pending bytes from nghttp2_session_mem_send */
    size_t out_len, out_off;
    const uint8_t *mem_out;
};

struct worker {
    int id, epfd;
    struct opts *o;
    struct conn *conns;
    int nconns;
    struct stats st;
    pthread_t th;
};

static uint8_t *g_file; /* the bodies file, whole */
static struct body *g_bodies;
static uint32_t g_nbodies;
static uint32_t g_max_len;
static atomic_ullong g_stamp_seq; /* --stamp-ids: requests stamped so far */
static atomic_llong g_budget;     /* requests left with -n; LLONG_MAX with -D */
static atomic_bool g_stopping;    /* no new requests */
static int64_t g_start_ns, g_stop_ns;
static atomic_llong g_grace_end_ns;
static atomic_llong g_last_answer_ns;
static volatile sig_atomic_t g_signalled;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

/* ---------------------------------------------------------------- histogram */

static int hist_index(int64_t ns)
{
    if (ns < HIST_SUB) {
        return ns < 0 ? 0 : (int)ns;
    }
    int e = 63 - __builtin_clzll((uint64_t)ns); /* >= 6 */
    int shift = e - 6;                          /* HIST_SUB = 2^6 */
    int sub = (int)((ns >> shift) - HIST_SUB);
    int idx = (shift + 1) * HIST_SUB + sub;
    return idx >= HIST_EXP * HIST_SUB ? HIST_EXP * HIST_SUB - 1 : idx;
}

static int64_t hist_value(int idx)
{
    if (idx < HIST_SUB) {
        return idx;
    }
    int shift = idx / HIST_SUB - 1;
    int64_t sub = idx % HIST_SUB + HIST_SUB;
    return ((sub + 1) << shift) - 1; /* the bucket's upper bound */
}

static void record_latency(struct stats *st, int64_t ns)
{
    st->hist[hist_index(ns)]++;
    if (ns > st->max_ns) {
        st->max_ns = ns;
    }
}

static double hist_percentile(const struct stats *st, double p)
{
    uint64_t total = 0;
    for (int i = 0; i < HIST_EXP * HIST_SUB; i++) {
        total += st->hist[i];
    }
    if (total == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)(p * (double)total + 0.999999);
    if (want == 0) {
        want = 1;
    }
    uint64_t seen = 0;
    for (int i = 0; i < HIST_EXP * HIST_SUB; i++) {
        seen += st->hist[i];
        if (seen >= want) {
            int64_t v = hist_value(i);
            return (double)(v < st->max_ns ? v : st->max_ns) / 1e6;
        }
    }
    return (double)st->max_ns / 1e6;
}

/* ---------------------------------------------------------------- bodies */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void load_bodies(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 8 || sb.st_size > MAX_FILE_BYTES) {
        die("bodies file: missing, shorter than its magic, or larger than 1 GiB");
    }
    uint8_t *buf = malloc((size_t)sb.st_size);
    if (buf == NULL || fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        die("bodies file: cannot read it whole");
    }
    fclose(f);
    g_file = buf;
    if (memcmp(buf, MAGIC, 8) != 0) {
        die("bodies file: no O2DLOAD1 magic (write it with tests/bench/gen_bodies.js)");
    }
    size_t n = 0, cap = 64, off = 8, size = (size_t)sb.st_size;
    g_bodies = malloc(cap * sizeof(*g_bodies));
    while (off < size) {
        if (size - off < 8) {
            die("bodies file: truncated record header");
        }
        uint32_t len = be32(buf + off), items = be32(buf + off + 4);
        off += 8;
        if (len > size - off) {
            die("bodies file: a record is longer than what is left of the file");
        }
        if (n == cap) {
            cap *= 2;
            g_bodies = realloc(g_bodies, cap * sizeof(*g_bodies));
        }
        if (g_bodies == NULL) {
            die("out of memory");
        }
        g_bodies[n++] = (struct body){buf + off, len, items, NULL, 0};
        if (len > g_max_len) {
            g_max_len = len;
        }
        off += len;
    }
    if (n == 0) {
        die("bodies file: no bodies");
    }
    g_nbodies = (uint32_t)n;
}

/* ---------------------------------------------------------------- --stamp-ids */

/* Reads a varint at *p (< end). -1 when it does not fit. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) {
            return -1;
        }
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            return 0;
        }
    }
    return -1;
}

/* Where index_ids() is in one body: the offsets found so far go to b->ids. */
struct pb_walk {
    const uint8_t *base;
    struct body *b;
    size_t cap;
};

static void add_id(struct pb_walk *w, const uint8_t *at)
{
    struct body *b = w->b;
    if (b->nids == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        b->ids = realloc(b->ids, w->cap * sizeof(*b->ids));
        if (b->ids == NULL) {
            die("out of memory");
        }
    }
    b->ids[b->nids++] = (uint32_t)(at - w->base);
}

/* depth 0: ExportTraceServiceRequest, 1: ResourceSpans, 2: ScopeSpans, 3: Span, 4: Link */
static int walk(struct pb_walk *w, const uint8_t *p, const uint8_t *end, int depth)
{
    static const uint64_t DESCEND[4] = {1, 2, 2, 13}; /* the field that leads one deeper */
    while (p < end) {
        uint64_t key, len;
        if (pb_varint(&p, end, &key) != 0) {
            return -1;
        }
        uint64_t field = key >> 3;
        switch (key & 7) {
        case 0:
            if (pb_varint(&p, end, &len) != 0) {
                return -1;
            }
            continue;
        case 1:
            p += 8;
            continue;
        case 5:
            p += 4;
            continue;
        case 2:
            break;
        default:
            return -1;
        }
        if (pb_varint(&p, end, &len) != 0 || len > (uint64_t)(end - p)) {
            return -1;
        }
        if (depth >= 3 && field == 1 && len == 16) { /* trace_id: its low 8 bytes */
            add_id(w, p + 8);
        } else if (depth >= 3 && (field == 2 || (depth == 3 && field == 4)) && len == 8) {
            add_id(w, p); /* span_id, parent_span_id */
        } else if (depth < 4 && field == DESCEND[depth]) {
            if (walk(w, p, p + len, depth + 1) != 0) {
                return -1;
            }
        }
        p += len;
    }
    return p == end ? 0 : -1;
}

/* Finds where every trace, span and parent span id of every body is (trace bodies only). */
static void index_ids(void)
{
    for (uint32_t i = 0; i < g_nbodies; i++) {
        struct body *b = &g_bodies[i];
        struct pb_walk w = {.base = b->data, .b = b};
        if (walk(&w, b->data, b->data + b->len, 0) != 0 || b->nids == 0) {
            die("--stamp-ids: a body is not an ExportTraceServiceRequest with span ids");
        }
    }
}

/* r->data: the body with every id's low 64 bits XORed with a value of this request's own, so
 * that every request carries spans and traces no other request had, with the same parent
 * links. The odd multiplier maps distinct sequence numbers to distinct values. */
static void stamp(struct req *r)
{
    const struct body *b = &g_bodies[r->body_idx];
    if (r->own == NULL) {
        r->own = malloc(g_max_len);
        if (r->own == NULL) {
            die("out of memory");
        }
    }
    memcpy(r->own, b->data, b->len);
    uint64_t k = (atomic_fetch_add(&g_stamp_seq, 1) + 1) * 0x9E3779B97F4A7C15ULL;
    for (size_t j = 0; j < b->nids; j++) {
        uint8_t *at = r->own + b->ids[j];
        for (int q = 0; q < 8; q++) {
            at[q] ^= (uint8_t)(k >> (8 * q));
        }
    }
    r->data = r->own;
}

/* ---------------------------------------------------------------- common */

static bool take_request(void)
{
    if (atomic_load(&g_stopping)) {
        return false;
    }
    if (atomic_fetch_sub(&g_budget, 1) <= 0) {
        atomic_store(&g_stopping, true);
        return false;
    }
    return true;
}

/* Gives r the connection's next body (stamped with --stamp-ids). */
static void next_body(struct conn *c, struct req *r)
{
    r->body_idx = c->next_body;
    c->next_body = (c->next_body + 1) % g_nbodies;
    r->data = g_bodies[r->body_idx].data;
    if (c->w->o->stamp_ids) {
        stamp(r);
    }
}

static void note_answer(void)
{
    long long t = now_ns(), prev = atomic_load(&g_last_answer_ns);
    while (t > prev && !atomic_compare_exchange_weak(&g_last_answer_ns, &prev, t)) {
    }
}

/* One answered request: its status and, for gRPC, its grpc-status (-1: none). */
static void finish_request(struct conn *c, struct req *r, int status, int grpc_status)
{
    struct stats *st = &c->w->st;
    st->answered++;
    st->by_status[status > 0 && status < 600 ? status : 0]++;
    bool ok;
    if (c->w->o->grpc) {
        st->by_grpc[grpc_status >= 0 && grpc_status <= 16 ? grpc_status : 17]++;
        ok = status == 200 && grpc_status == 0;
    } else {
        ok = status >= 200 && status < 300;
    }
    if (ok) {
        st->ok++;
        st->items_ok += g_bodies[r->body_idx].items;
    }
    record_latency(st, now_ns() - r->start_ns);
    note_answer();
    r->used = false;
}

static int set_nonblock_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_close(struct conn *c, enum err_kind why_inflight);
static void conn_open(struct conn *c);
static void h1_start(struct conn *c);
static void h2_pump(struct conn *c);

static void epoll_set(struct conn *c, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static bool conn_has_inflight(const struct conn *c)
{
    return c->w->o->grpc ? c->inflight > 0 : c->r.used;
}

/* ---------------------------------------------------------------- HTTP/1.1 */

static void h1_start(struct conn *c)
{
    struct opts *o = c->w->o;
    if (!take_request()) {
        c->h1 = H1_IDLE;
        return;
    }
    struct req *r = &c->r;
    uint8_t *own = r->own;
    *r = (struct req){
        .used = true, .start_ns = now_ns(), .status = -1, .grpc_status = -1, .c = c, .own = own};
    next_body(c, r);
    const struct body *b = &g_bodies[r->body_idx];
    int n =
        snprintf(c->hdr, sizeof(c->hdr), "POST %s HTTP/1.1\r\nHost: %s\r\n", o->path, o->authority);
    bool have_ct = false;
    for (int i = 0; i < o->nheaders; i++) {
        have_ct |= strncasecmp(o->headers[i], "content-type:", 13) == 0;
        n += snprintf(c->hdr + n, sizeof(c->hdr) - (size_t)n, "%s\r\n", o->headers[i]);
    }
    if (!have_ct) {
        n += snprintf(c->hdr + n, sizeof(c->hdr) - (size_t)n,
                      "Content-Type: application/x-protobuf\r\n");
    }
    n += snprintf(c->hdr + n, sizeof(c->hdr) - (size_t)n, "Content-Length: %" PRIu32 "\r\n\r\n",
                  b->len);
    if (n >= (int)sizeof(c->hdr)) {
        die("request headers longer than 1 KiB");
    }
    c->hdr_len = (size_t)n;
    c->wrote = 0;
    c->h1 = H1_SENDING;
    c->w->st.sent++;
    c->w->st.items_sent += b->items;
    epoll_set(c, true);
}

static void h1_write(struct conn *c)
{
    const struct body *b = &g_bodies[c->r.body_idx];
    size_t total = c->hdr_len + b->len;
    while (c->wrote < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->wrote < c->hdr_len) {
            iov[n++] = (struct iovec){c->hdr + c->wrote, c->hdr_len - c->wrote};
            iov[n++] = (struct iovec){(void *)c->r.data, b->len};
        } else {
            size_t o = c->wrote - c->hdr_len;
            iov[n++] = (struct iovec){(void *)(c->r.data + o), b->len - o};
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            conn_close(c, ERR_CLOSED);
            return;
        }
        c->wrote += (size_t)w;
        c->w->st.bytes_sent += (uint64_t)w;
    }
    c->h1 = H1_HEADERS;
    c->in_len = 0;
    epoll_set(c, false);
}

/* Parses the status line and the headers in c->in[0..end). 0 or -1. */
static int h1_parse_headers(struct conn *c, size_t end)
{
    if (end < 12 || memcmp(c->in, "HTTP/1.", 7) != 0) {
        return -1;
    }
    c->r.status = atoi(c->in + 9);
    c->body_left = 0;
    c->chunked = false;
    c->server_close = c->in[7] == '0';
    const char *p = memchr(c->in, '\n', end);
    while (p != NULL && (size_t)(p - c->in) + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\n', end - (size_t)(line - c->in));
        if (eol == NULL) {
            break;
        }
        size_t len = (size_t)(eol - line);
        if (len >= 15 && strncasecmp(line, "content-length:", 15) == 0) {
            c->body_left = atoll(line + 15);
        } else if (len >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            c->chunked = memmem(line, len, "chunked", 7) != NULL;
        } else if (len >= 11 && strncasecmp(line, "connection:", 11) == 0) {
            c->server_close |= memmem(line, len, "close", 5) != NULL;
        }
        p = eol;
    }
    return c->r.status >= 100 ? 0 : -1;
}

static void h1_done(struct conn *c)
{
    finish_request(c, &c->r, c->r.status, -1);
    if (c->server_close) {
        c->w->st.reconnects++;
        conn_close(c, ERR_CLOSED);
        return;
    }
    h1_start(c);
}

/* Consumes c->in[0..in_len) after the headers. */
static void h1_consume(struct conn *c)
{
    size_t i = 0;
    while (i < c->in_len) {
        if (c->h1 == H1_BODY) {
            size_t take = c->in_len - i;
            if ((long long)take > c->body_left) {
                take = (size_t)c->body_left;
            }
            c->body_left -= (long long)take;
            i += take;
            if (c->body_left == 0) {
                c->in_len = 0;
                h1_done(c);
                return; /* a keep-alive server sends nothing before the next request */
            }
        } else if (c->h1 == H1_CHUNK_SIZE) {
            char *nl = memchr(c->in + i, '\n', c->in_len - i);
            if (nl == NULL) {
                memmove(c->in, c->in + i, c->in_len - i);
                c->in_len -= i;
                if (c->in_len > 64) {
                    conn_close(c, ERR_PROTOCOL);
                }
                return;
            }
            long long sz = strtoll(c->in + i, NULL, 16);
            i = (size_t)(nl - c->in) + 1;
            if (sz == 0) {
                /* no trailers are expected: the final CRLF follows */
                c->body_left = 2;
                c->h1 = H1_BODY;
            } else {
                c->body_left = sz + 2;
                c->h1 = H1_CHUNK_DATA;
            }
        } else { /* H1_CHUNK_DATA */
            size_t take = c->in_len - i;
            if ((long long)take > c->body_left) {
                take = (size_t)c->body_left;
            }
            c->body_left -= (long long)take;
            i += take;
            if (c->body_left == 0) {
                c->h1 = H1_CHUNK_SIZE;
            }
        }
    }
    c->in_len = 0;
}

static void h1_read(struct conn *c)
{
    for (;;) {
        if (c->in_len == sizeof(c->in)) {
            conn_close(c, ERR_PROTOCOL);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            conn_close(c, ERR_CLOSED);
            return;
        }
        if (n == 0) {
            c->w->st.reconnects++;
            conn_close(c, ERR_CLOSED);
            return;
        }
        if (c->h1 == H1_IDLE || c->h1 == H1_SENDING) {
            /* an answer before the request was whole (413, 503 early): read it anyway */
            if (c->h1 == H1_IDLE) {
                conn_close(c, ERR_PROTOCOL);
                return;
            }
            c->h1 = H1_HEADERS;
            epoll_set(c, false);
        }
        c->in_len += (size_t)n;
        if (c->h1 == H1_HEADERS) {
            char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (e == NULL) {
                continue;
            }
            size_t hend = (size_t)(e - c->in) + 4;
            if (h1_parse_headers(c, hend) != 0) {
                conn_close(c, ERR_PROTOCOL);
                return;
            }
            if (c->r.status < 200) { /* 100 Continue and the like: skip */
                memmove(c->in, c->in + hend, c->in_len - hend);
                c->in_len -= hend;
                continue;
            }
            memmove(c->in, c->in + hend, c->in_len - hend);
            c->in_len -= hend;
            c->h1 = c->chunked ? H1_CHUNK_SIZE : H1_BODY;
            bool partial_request = c->wrote < c->hdr_len + g_bodies[c->r.body_idx].len;
            if (!c->chunked && c->body_left == 0) {
                if (partial_request) {
                    c->server_close = true; /* the rest of the body cannot be sent now */
                }
                h1_done(c);
                return;
            }
            if (partial_request) {
                c->server_close = true;
            }
        }
        if (c->h1 == H1_IDLE) {
            return;
        }
        struct conn *self = c;
        int fd = c->fd;
        h1_consume(c);
        if (self->fd != fd || self->h1 == H1_SENDING || self->h1 == H1_IDLE) {
            return; /* closed, or a new request started */
        }
    }
}

/* ---------------------------------------------------------------- gRPC (HTTP/2) */

static ssize_t h2_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)ud;
    struct req *r = src->ptr;
    const struct body *b = &g_bodies[r->body_idx];
    size_t total = GRPC_PREFIX + b->len, n = 0;
    while (n < len && r->off < total) {
        if (r->off < GRPC_PREFIX) {
            uint8_t pfx[GRPC_PREFIX] = {0, (uint8_t)(b->len >> 24), (uint8_t)(b->len >> 16),
                                        (uint8_t)(b->len >> 8), (uint8_t)b->len};
            buf[n++] = pfx[r->off++];
        } else {
            size_t o = r->off - GRPC_PREFIX, take = total - r->off;
            if (take > len - n) {
                take = len - n;
            }
            memcpy(buf + n, r->data + o, take);
            n += take;
            r->off += take;
        }
    }
    if (r->off == total) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static void h2_submit(struct conn *c)
{
    struct opts *o = c->w->o;
    while (!c->goaway && !c->closing && c->inflight < o->streams) {
        struct req *r = NULL;
        for (int i = 0; i < o->streams; i++) {
            if (!c->slots[i].used) {
                r = &c->slots[i];
                break;
            }
        }
        if (r == NULL || !take_request()) {
            return;
        }
        uint8_t *own = r->own;
        *r = (struct req){.used = true,
                          .start_ns = now_ns(),
                          .status = -1,
                          .grpc_status = -1,
                          .c = c,
                          .own = own};
        next_body(c, r);
        nghttp2_nv nva[6 + MAX_HEADERS];
        size_t n = 0;
#define NV(name, value)                                                                            \
    nva[n++] = (nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value),    \
                            NGHTTP2_NV_FLAG_NONE}
        NV(":method", "POST");
        NV(":scheme", "http");
        NV(":authority", o->authority);
        NV(":path", o->path);
#undef NV
        char names[MAX_HEADERS][128];
        bool have_ct = false, have_te = false;
        for (int i = 0; i < o->nheaders; i++) {
            const char *colon = strchr(o->headers[i], ':');
            size_t nl = (size_t)(colon - o->headers[i]);
            if (nl >= sizeof(names[i])) {
                nl = sizeof(names[i]) - 1;
            }
            for (size_t k = 0; k < nl; k++) {
                char ch = o->headers[i][k];
                names[i][k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
            names[i][nl] = 0;
            const char *v = colon + 1;
            while (*v == ' ') {
                v++;
            }
            have_ct |= strcmp(names[i], "content-type") == 0;
            have_te |= strcmp(names[i], "te") == 0;
            nva[n++] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)v, nl, strlen(v),
                                    NGHTTP2_NV_FLAG_NONE};
        }
        if (!have_ct) {
            nva[n++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12,
                                    16, NGHTTP2_NV_FLAG_NONE};
        }
        if (!have_te) {
            nva[n++] =
                (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE};
        }
        nghttp2_data_provider dp = {.source.ptr = r, .read_callback = h2_read_body};
        int32_t sid = nghttp2_submit_request(c->h2, NULL, nva, n, &dp, r);
        if (sid < 0) {
            r->used = false;
            atomic_fetch_add(&g_budget, 1);
            if (sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
                c->goaway = true; /* ids used up: a fresh connection */
            }
            return;
        }
        r->stream_id = sid;
        c->inflight++;
        c->w->st.sent++;
        c->w->st.items_sent += g_bodies[r->body_idx].items;
        c->w->st.bytes_sent += GRPC_PREFIX + g_bodies[r->body_idx].len;
    }
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud)
{
    (void)flags;
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    struct req *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (r == NULL) {
        return 0;
    }
    char v[16];
    size_t vl = valuelen < sizeof(v) - 1 ? valuelen : sizeof(v) - 1;
    memcpy(v, value, vl);
    v[vl] = 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = atoi(v);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        r->grpc_status = atoi(v);
    }
    return 0;
}

static int h2_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    struct conn *c = ud;
    struct req *r = nghttp2_session_get_stream_user_data(s, sid);
    if (r == NULL || !r->used) {
        return 0;
    }
    c->inflight--;
    if (code == NGHTTP2_NO_ERROR && r->status > 0 && !r->timed_out) {
        finish_request(c, r, r->status, r->grpc_status);
        return 0;
    }
    enum err_kind k = code == NGHTTP2_REFUSED_STREAM ? ERR_REFUSED
                      : r->timed_out                 ? ERR_TIMEOUT
                      : code == NGHTTP2_NO_ERROR     ? ERR_PROTOCOL
                                                     : ERR_RST_STREAM;
    c->w->st.errors[k]++;
    r->used = false;
    return 0;
}

static int h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    struct conn *c = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
    }
    return 0;
}

static int h2_init(struct conn *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return -1;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
    int rv = nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        return -1;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    c->inflight = 0;
    c->goaway = false;
    c->out_len = c->out_off = 0;
    return 0;
}

/* Writes what nghttp2 has to send, submits new requests, and reconnects once a session that
 * got GOAWAY has no stream left. */
static void h2_pump(struct conn *c)
{
    if (c->fd < 0) {
        return;
    }
    h2_submit(c);
    for (;;) {
        if (c->out_off == c->out_len) {
            ssize_t n = nghttp2_session_mem_send(c->h2, &c->mem_out);
            if (n < 0) {
                conn_close(c, ERR_PROTOCOL);
                return;
            }
            if (n == 0) {
                break;
            }
            c->out_len = (size_t)n;
            c->out_off = 0;
        }
        ssize_t w = write(c->fd, c->mem_out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                epoll_set(c, true);
                return;
            }
            conn_close(c, ERR_CLOSED);
            return;
        }
        c->out_off += (size_t)w;
        if (c->out_off < c->out_len) {
            epoll_set(c, true);
            return;
        }
        h2_submit(c);
    }
    epoll_set(c, false);
    if ((c->goaway && c->inflight == 0) ||
        (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))) {
        c->w->st.reconnects++;
        conn_close(c, ERR_CLOSED);
    }
}

static void h2_read(struct conn *c)
{
    uint8_t buf[RBUF_SIZE];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            conn_close(c, ERR_CLOSED);
            return;
        }
        if (n == 0) {
            c->w->st.reconnects++;
            conn_close(c, ERR_CLOSED);
            return;
        }
        if (nghttp2_session_mem_recv(c->h2, buf, (size_t)n) < 0) {
            conn_close(c, ERR_PROTOCOL);
            return;
        }
    }
    h2_pump(c);
}

/* ---------------------------------------------------------------- connections */

/* Closes the socket; requests in flight are counted as `why` (they get no answer). */
static void conn_close(struct conn *c, enum err_kind why)
{
    if (c->fd < 0) {
        return;
    }
    struct stats *st = &c->w->st;
    if (c->w->o->grpc) {
        for (int i = 0; i < c->w->o->streams; i++) {
            if (c->slots[i].used) {
                st->errors[why]++;
                c->slots[i].used = false;
            }
        }
        c->inflight = 0;
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    } else if (c->r.used) {
        st->errors[why]++;
        c->r.used = false;
    }
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->h1 = H1_IDLE;
    c->connecting = false;
    c->retry_at = why == ERR_CONNECT ? now_ns() + RECONNECT_PAUSE : 0;
}

static void conn_open(struct conn *c)
{
    struct opts *o = c->w->o;
    if (atomic_load(&g_stopping)) {
        return;
    }
    int fd = socket(o->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || set_nonblock_nodelay(fd) != 0) {
        die("socket()");
    }
    c->fd = fd;
    c->connecting = true;
    c->connect_deadline = now_ns() + (int64_t)(o->timeout_s * 1e9);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (connect(fd, (struct sockaddr *)&o->addr, o->addrlen) != 0 && errno != EINPROGRESS) {
        c->w->st.errors[ERR_CONNECT]++;
        conn_close(c, ERR_CONNECT);
    }
}

static void conn_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        c->w->st.errors[ERR_CONNECT]++;
        conn_close(c, ERR_CONNECT);
        return;
    }
    c->connecting = false;
    if (c->w->o->grpc) {
        if (h2_init(c) != 0) {
            die("nghttp2 session");
        }
        h2_pump(c);
    } else {
        h1_start(c);
        if (c->h1 == H1_IDLE) {
            epoll_set(c, false);
        }
    }
}

static void conn_event(struct conn *c, uint32_t ev)
{
    if (c->connecting) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            conn_connected(c);
        }
        return;
    }
    if (c->w->o->grpc) {
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            h2_read(c);
        } else if (ev & EPOLLOUT) {
            h2_pump(c);
        }
        return;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        h1_read(c);
    }
    if (c->fd >= 0 && c->h1 == H1_SENDING && (ev & EPOLLOUT)) {
        h1_write(c);
    }
}

/* Timeouts of connects and requests; reconnects of closed connections. */
static void conn_tick(struct conn *c, int64_t now)
{
    struct opts *o = c->w->o;
    int64_t tmo = (int64_t)(o->timeout_s * 1e9);
    if (c->fd < 0) {
        if (!atomic_load(&g_stopping) && now >= c->retry_at) {
            conn_open(c);
        }
        return;
    }
    if (c->connecting) {
        if (now > c->connect_deadline) {
            c->w->st.errors[ERR_CONNECT]++;
            conn_close(c, ERR_CONNECT);
        }
        return;
    }
    if (o->grpc) {
        bool reset = false;
        for (int i = 0; i < o->streams; i++) {
            struct req *r = &c->slots[i];
            if (r->used && !r->timed_out && now - r->start_ns > tmo) {
                r->timed_out = true; /* h2_on_close counts it as a timeout */
                nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
                reset = true;
            }
        }
        if (reset || !atomic_load(&g_stopping)) {
            h2_pump(c);
        }
        return;
    }
    if (c->r.used && now - c->r.start_ns > tmo) {
        conn_close(c, ERR_TIMEOUT);
    } else if (!c->r.used && c->h1 == H1_IDLE && !atomic_load(&g_stopping)) {
        h1_start(c);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[256];
    for (int i = 0; i < w->nconns; i++) {
        conn_open(&w->conns[i]);
    }
    int64_t last_tick = 0;
    for (;;) {
        int64_t now = now_ns();
        bool stopping = atomic_load(&g_stopping);
        if (stopping) {
            bool busy = false;
            for (int i = 0; i < w->nconns; i++) {
                busy |= w->conns[i].fd >= 0 && conn_has_inflight(&w->conns[i]);
            }
            if (!busy || now >= g_grace_end_ns) {
                break;
            }
        }
        int n = epoll_wait(w->epfd, evs, 256, 10);
        for (int i = 0; i < n; i++) {
            conn_event(evs[i].data.ptr, evs[i].events);
        }
        now = now_ns();
        if (now - last_tick >= 5000000) {
            for (int i = 0; i < w->nconns; i++) {
                conn_tick(&w->conns[i], now);
            }
            last_tick = now;
        }
    }
    for (int i = 0; i < w->nconns; i++) {
        conn_close(&w->conns[i], ERR_CUT);
    }
    return NULL;
}

/* ---------------------------------------------------------------- main */

static void on_signal(int sig)
{
    (void)sig;
    g_signalled = 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen (--h1|--grpc) -f BODIES [-c CONNS] [-m STREAMS] [-t THREADS]\n"
            "               (-D SECONDS | -n REQUESTS) [-H 'name: value']... [--timeout S]\n"
            "               [--grace S] [--stamp-ids] http://HOST:PORT/PATH\n");
    exit(2);
}

static void parse_url(struct opts *o, const char *url)
{
    if (strncmp(url, "http://", 7) != 0) {
        die("the URL must start with http:// (no TLS)");
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h);
    snprintf(o->path, sizeof(o->path), "%s", slash ? slash : "/");
    size_t alen = (size_t)(hend - h);
    if (alen == 0 || alen >= sizeof(o->authority)) {
        die("URL: bad authority");
    }
    memcpy(o->authority, h, alen);
    o->authority[alen] = 0;
    const char *colon = NULL;
    if (o->authority[0] == '[') {
        char *rb = strchr(o->authority, ']');
        if (rb == NULL) {
            die("URL: bad IPv6 literal");
        }
        snprintf(o->host, sizeof(o->host), "%.*s", (int)(rb - o->authority - 1), o->authority + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(o->authority, ':');
        snprintf(o->host, sizeof(o->host), "%.*s", (int)(colon ? colon - o->authority : (long)alen),
                 o->authority);
    }
    snprintf(o->port, sizeof(o->port), "%s", colon ? colon + 1 : "80");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(o->host, o->port, &hints, &ai) != 0) {
        die("URL: cannot resolve the host");
    }
    memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
    o->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
}

static void sum_stats(struct stats *t, const struct stats *s)
{
    const uint64_t *a = (const uint64_t *)s;
    uint64_t *b = (uint64_t *)t;
    size_t n = offsetof(struct stats, max_ns) / sizeof(uint64_t);
    for (size_t i = 0; i < n; i++) {
        b[i] += a[i];
    }
    if (s->max_ns > t->max_ns) {
        t->max_ns = s->max_ns;
    }
}

static void print_json(const struct opts *o, const struct stats *st, double duration_s,
                       double load_s)
{
    printf("{\"mode\":\"%s\",\"conns\":%d,\"streams\":%d,\"threads\":%d,\"bodies\":%" PRIu32
           ",\"duration_s\":%.6f,\"load_s\":%.6f,",
           o->grpc ? "grpc" : "h1", o->conns, o->grpc ? o->streams : 1, o->threads, g_nbodies,
           duration_s, load_s);
    printf("\"requests\":{\"sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"ok\":%" PRIu64 "},",
           st->sent, st->answered, st->ok);
    printf("\"status\":{");
    const char *sep = "";
    for (int i = 0; i < 600; i++) {
        if (st->by_status[i] != 0) {
            printf("%s\"%d\":%" PRIu64, sep, i, st->by_status[i]);
            sep = ",";
        }
    }
    printf("},\"grpc_status\":{");
    sep = "";
    for (int i = 0; i < 18; i++) {
        if (st->by_grpc[i] != 0) {
            if (i == 17) {
                printf("%s\"none\":%" PRIu64, sep, st->by_grpc[i]);
            } else {
                printf("%s\"%d\":%" PRIu64, sep, i, st->by_grpc[i]);
            }
            sep = ",";
        }
    }
    printf("},\"errors\":{");
    uint64_t nerr = 0;
    for (int i = 0; i < ERR_N; i++) {
        printf("%s\"%s\":%" PRIu64, i ? "," : "", ERR_NAMES[i], st->errors[i]);
        nerr += st->errors[i];
    }
    printf("},\"errors_total\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",", nerr, st->reconnects);
    printf("\"bytes_sent\":%" PRIu64 ",\"items_sent\":%" PRIu64 ",\"items_ok\":%" PRIu64 ",",
           st->bytes_sent, st->items_sent, st->items_ok);
    printf("\"ok_per_s\":%.1f,\"items_ok_per_s\":%.1f,",
           duration_s > 0 ? (double)st->ok / duration_s : 0,
           duration_s > 0 ? (double)st->items_ok / duration_s : 0);
    printf("\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
           hist_percentile(st, 0.50), hist_percentile(st, 0.90), hist_percentile(st, 0.99),
           (double)st->max_ns / 1e6);
}

int main(int argc, char **argv)
{
    static struct opts o = {.conns = 1, .streams = 1, .threads = 1, .timeout_s = 10, .grace_s = 10};
    int mode = 0;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_V()                                                                                   \
    do {                                                                                           \
        if (v == NULL) {                                                                           \
            usage();                                                                               \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--h1") == 0) {
            mode = 1;
        } else if (strcmp(a, "--grpc") == 0) {
            mode = 2;
        } else if (strcmp(a, "-c") == 0) {
            NEED_V();
            o.conns = atoi(v);
        } else if (strcmp(a, "-m") == 0) {
            NEED_V();
            o.streams = atoi(v);
        } else if (strcmp(a, "-t") == 0) {
            NEED_V();
            o.threads = atoi(v);
        } else if (strcmp(a, "-D") == 0) {
            NEED_V();
            o.duration_s = atof(v);
        } else if (strcmp(a, "-n") == 0) {
            NEED_V();
            o.requests = atoll(v);
        } else if (strcmp(a, "-H") == 0) {
            NEED_V();
            if (o.nheaders == MAX_HEADERS || strchr(v, ':') == NULL || v[0] == ':') {
                die("-H wants 'name: value' (at most 32)");
            }
            o.headers[o.nheaders++] = v;
        } else if (strcmp(a, "-f") == 0) {
            NEED_V();
            o.bodies_path = v;
        } else if (strcmp(a, "--stamp-ids") == 0) {
            o.stamp_ids = true;
        } else if (strcmp(a, "--timeout") == 0) {
            NEED_V();
            o.timeout_s = atof(v);
        } else if (strcmp(a, "--grace") == 0) {
            NEED_V();
            o.grace_s = atof(v);
        } else if (a[0] == '-') {
            usage();
        } else {
            url = a;
        }
#undef NEED_V
    }
    if (mode == 0 || url == NULL || o.bodies_path == NULL ||
        (o.duration_s <= 0) == (o.requests <= 0) || o.conns < 1 || o.conns > MAX_CONNS ||
        o.streams < 1 || o.streams > MAX_STREAMS || o.threads < 1 || o.threads > o.conns ||
        o.timeout_s <= 0 || o.grace_s < 0) {
        usage();
    }
    o.grpc = mode == 2;
    parse_url(&o, url);
    load_bodies(o.bodies_path);
    if (o.stamp_ids) {
        index_ids();
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    atomic_store(&g_budget, o.requests > 0 ? o.requests : LLONG_MAX);
    struct worker *ws = calloc((size_t)o.threads, sizeof(*ws));
    struct conn *cs = calloc((size_t)o.conns, sizeof(*cs));
    if (ws == NULL || cs == NULL) {
        die("out of memory");
    }
    for (int k = 0; k < o.conns; k++) {
        struct conn *c = &cs[k];
        c->fd = -1;
        c->index = k;
        c->next_body = (uint32_t)((uint64_t)k * g_nbodies / (uint64_t)o.conns);
        if (o.grpc) {
            c->slots = calloc((size_t)o.streams, sizeof(*c->slots));
            if (c->slots == NULL) {
                die("out of memory");
            }
        }
    }
    int base = 0;
    g_start_ns = now_ns();
    g_grace_end_ns = INT64_MAX;
    for (int t = 0; t < o.threads; t++) {
        struct worker *w = &ws[t];
        w->id = t;
        w->o = &o;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->nconns = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
        w->conns = cs + base;
        for (int i = 0; i < w->nconns; i++) {
            w->conns[i].w = w;
        }
        base += w->nconns;
    }
    for (int t = 0; t < o.threads; t++) {
        if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t]) != 0) {
            die("pthread_create");
        }
    }
    /* The main thread keeps the clock: -D, -n (the workers stop themselves), signals. */
    int64_t end = o.duration_s > 0 ? g_start_ns + (int64_t)(o.duration_s * 1e9) : INT64_MAX;
    for (;;) {
        int64_t now = now_ns();
        if (now >= end || g_signalled || atomic_load(&g_stopping)) {
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    g_stop_ns = now_ns();
    g_grace_end_ns = g_stop_ns + (int64_t)(o.grace_s * 1e9);
    atomic_store(&g_stopping, true);
    for (int t = 0; t < o.threads; t++) {
        pthread_join(ws[t].th, NULL);
    }
    struct stats total = {0};
    for (int t = 0; t < o.threads; t++) {
        sum_stats(&total, &ws[t].st);
        close(ws[t].epfd);
    }
    int64_t last = atomic_load(&g_last_answer_ns);
    double load_s = (double)(g_stop_ns - g_start_ns) / 1e9;
    double duration_s = (double)((last > g_stop_ns ? last : g_stop_ns) - g_start_ns) / 1e9;
    print_json(&o, &total, duration_s, load_s);
    for (int k = 0; k < o.conns; k++) {
        free(cs[k].r.own);
        for (int i = 0; cs[k].slots != NULL && i < o.streams; i++) {
            free(cs[k].slots[i].own);
        }
        free(cs[k].slots);
    }
    for (uint32_t i = 0; i < g_nbodies; i++) {
        free(g_bodies[i].ids);
    }
    free(cs);
    free(ws);
    free(g_file);
    free(g_bodies);
    return 0;
}
