/*
 * health_cmd.c: `otel2dd health [--timeout T] [URL]`, a one-shot client for the health
 * endpoint (health.c), so that Docker's HEALTHCHECK, compose's healthcheck and ECS's
 * healthCheck can exec the binary itself: slim images have no curl and no shell.
 *
 * It makes one GET, exits 0 on a 200 and 1 otherwise, with one line on stderr that says why
 * (refused, timed out, the HTTP status and the "status" the body gives). Everything about it
 * is bounded, because a health check that hangs or forks is worse than none: one timeout
 * covers connect and answer, the body is capped, there is no redirect, no proxy (a container's
 * http_proxy is meant for the outside world, not for 127.0.0.1) and no scheme but http://.
 * What "healthy" means is decided by the server; this file only asks.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "health_cmd.h"
#include "o2d.h"
#include "o2d_buf.h"

#define HEALTH_DEFAULT_URL        "http://127.0.0.1:13133/"
#define HEALTH_DEFAULT_TIMEOUT_MS 2000
/* ECS allows a health check 60 s at most; a longer wait is a typo. */
#define HEALTH_MAX_TIMEOUT_MS 60000
/* Our endpoint answers {"status":"draining"}; anything much longer is not ours. */
#define HEALTH_BODY_MAX 4096
/* Our endpoint sends four short headers; curl alone would take 100 KiB before giving up. */
#define HEALTH_HEADERS_MAX 8192
/* What a reason may quote of a body or of curl's message, to stay one short line. */
#define HEALTH_QUOTE_MAX 120

static void usage(FILE *f)
{
    fprintf(f, "usage: otel2dd health [--timeout T] [URL]\n"
               "\n"
               "Asks otel2dd's health endpoint whether it is ready: exits 0 when URL answers\n"
               "200, else 1 with the reason on stderr. For container health checks.\n"
               "\n"
               "  URL            http:// only (default " HEALTH_DEFAULT_URL ")\n"
               "  -t, --timeout  connect + answer, e.g. 2s or 500ms (default 2s, at most 60s)\n"
               "  -h, --help     print this help and exit\n");
}

/* "2s", "500ms", or plain seconds; 0 on anything else or out of range. */
static long parse_timeout_ms(const char *s)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || v <= 0) {
        return 0;
    }
    long ms;
    if (strcmp(end, "ms") == 0) {
        ms = v;
    } else if (strcmp(end, "s") == 0 || *end == '\0') {
        ms = v > HEALTH_MAX_TIMEOUT_MS / 1000 ? HEALTH_MAX_TIMEOUT_MS + 1 : v * 1000;
    } else {
        return 0;
    }
    return ms <= HEALTH_MAX_TIMEOUT_MS ? ms : 0;
}

/* Copies at most HEALTH_QUOTE_MAX bytes of p into out, control and non-ASCII bytes as '?', so
 * that whatever a server sends stays on one line of the log. */
static void quote(char *out, size_t outlen, const char *p, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && i < HEALTH_QUOTE_MAX && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)p[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > HEALTH_QUOTE_MAX && j + 4 < outlen) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

struct body {
    struct o2d_buf buf;
    int too_large;
    size_t header_bytes;
    int headers_too_large;
};

static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct body *b = ctx;
    size_t n = size * nmemb;
    b->header_bytes += n;
    if (b->header_bytes > HEALTH_HEADERS_MAX) {
        b->headers_too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    struct body *b = ctx;
    size_t n = size * nmemb;
    if (o2d_buf_append(&b->buf, p, n) != O2D_OK) {
        b->too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Refuses anything but http://host[:port][/path] before curl sees it, with a message a
 * person can act on; curl's parser then checks the rest. */
static int check_url(const char *url, CURLU *u, char *why, size_t whylen)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL) {
        char q[HEALTH_QUOTE_MAX + 4];
        quote(q, sizeof(q), url, strlen(url));
        snprintf(why, whylen, "'%s' has no scheme: write http://HOST:PORT/", q);
        return O2D_ERR_INVALID;
    }
    if ((size_t)(sep - url) != 4 || strncasecmp(url, "http", 4) != 0) {
        char scheme[32];
        quote(scheme, sizeof(scheme), url, (size_t)(sep - url) < 16 ? (size_t)(sep - url) : 16);
        snprintf(why, whylen, "scheme '%s' is not supported: only http:// URLs", scheme);
        return O2D_ERR_INVALID;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK) {
        char q[HEALTH_QUOTE_MAX + 4];
        quote(q, sizeof(q), url, strlen(url));
        snprintf(why, whylen, "bad URL '%s': %s", q, curl_url_strerror(uc));
        return O2D_ERR_INVALID;
    }
    return O2D_OK;
}

/* The reason for a transfer that did not complete, in the words an operator searches for. */
static void describe_failure(CURL *easy, CURLcode cc, const char *errbuf, const struct body *b,
                             long timeout_ms, char *why, size_t whylen)
{
    long os_errno = 0;
    curl_off_t connect_us = 0;
    char q[HEALTH_QUOTE_MAX + 4];
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    quote(q, sizeof(q), errbuf[0] ? errbuf : curl_easy_strerror(cc),
          strlen(errbuf[0] ? errbuf : curl_easy_strerror(cc)));
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno != 0) {
            snprintf(why, whylen, "cannot connect: %s", strerror((int)os_errno));
        } else {
            snprintf(why, whylen, "cannot connect: %s", q);
        }
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(why, whylen, "timeout: no %s within %ld ms",
                 connect_us == 0 ? "connection" : "answer", timeout_ms);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (b->headers_too_large) {
            snprintf(why, whylen, "response headers larger than %d bytes", HEALTH_HEADERS_MAX);
        } else if (b->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
            snprintf(why, whylen, "response body larger than %d bytes", HEALTH_BODY_MAX);
        } else {
            snprintf(why, whylen, "%s", q);
        }
        break;
    case CURLE_OUT_OF_MEMORY:
        /* curl 7.88 says only this when one header line passes its 100 KiB limit. */
        snprintf(why, whylen, "response header line too long (or out of memory)");
        break;
    case CURLE_GOT_NOTHING:
        snprintf(why, whylen, "the server closed the connection without answering");
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(why, whylen, "not an HTTP response: %s", q);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(why, whylen, "cannot resolve the host: %s", q);
        break;
    default:
        snprintf(why, whylen, "%s", q);
        break;
    }
}

/* "HTTP 503 (status: draining)" from our own endpoint, else the status and a quoted body. */
static void describe_status(long code, const struct body *b, char *why, size_t whylen)
{
    const char *p = (const char *)b->buf.data;
    size_t n = b->buf.len;
    json_t *doc = n > 0 ? json_loadb(p, n, 0, NULL) : NULL;
    const char *status =
        json_is_object(doc) ? json_string_value(json_object_get(doc, "status")) : NULL;
    char q[HEALTH_QUOTE_MAX + 4];
    if (status != NULL) {
        quote(q, sizeof(q), status, strlen(status));
        snprintf(why, whylen, "HTTP %ld (status: %s)", code, q);
    } else if (n > 0) {
        quote(q, sizeof(q), p, n);
        snprintf(why, whylen, "HTTP %ld: %s", code, q);
    } else {
        snprintf(why, whylen, "HTTP %ld", code);
    }
    json_decref(doc);
}

int health_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long timeout_ms = HEALTH_DEFAULT_TIMEOUT_MS;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            timeout_ms = parse_timeout_ms(optarg);
            if (timeout_ms == 0) {
                fprintf(stderr,
                        "otel2dd health: bad --timeout '%s': want e.g. 2s or 500ms, "
                        "at most 60s\n",
                        optarg);
                return 1;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "otel2dd health: one URL at most\n");
        return 1;
    }
    const char *url = optind < argc ? argv[optind] : HEALTH_DEFAULT_URL;

    int exit_code = 1;
    char why[512] = "";
    char errbuf[CURL_ERROR_SIZE] = "";
    struct body b = {.too_large = 0, .header_bytes = 0};
    o2d_buf_init(&b.buf, HEALTH_BODY_MAX);
    CURL *easy = NULL;
    CURLU *u = NULL;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(why, sizeof(why), "cannot initialise libcurl");
        goto out;
    }
    u = curl_url();
    easy = curl_easy_init();
    if (u == NULL || easy == NULL) {
        snprintf(why, sizeof(why), "out of memory");
        goto out;
    }
    if (check_url(url, u, why, sizeof(why)) != O2D_OK) {
        goto out;
    }
    /* Settings a health check must not inherit from curl's defaults or the environment. */
    if (curl_easy_setopt(easy, CURLOPT_CURLU, u) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http") != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROXY, "") != CURLE_OK || /* "" beats http_proxy */
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HEALTH_BODY_MAX) !=
            CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, &b) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "otel2dd-health/" O2D_VERSION) != CURLE_OK) {
        snprintf(why, sizeof(why), "cannot set up libcurl");
        goto out;
    }
    CURLcode cc = curl_easy_perform(easy);
    if (cc != CURLE_OK) {
        describe_failure(easy, cc, errbuf, &b, timeout_ms, why, sizeof(why));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    describe_status(code, &b, why, sizeof(why));
    if (code == 200) {
        /* Docker keeps a health check's output in `docker inspect`: say what was seen. */
        printf("otel2dd health: %s: %s\n", url, why);
        exit_code = 0;
    }

out:
    if (exit_code != 0) {
        char url_q[HEALTH_QUOTE_MAX + 4];
        quote(url_q, sizeof(url_q), url, strlen(url));
        fprintf(stderr, "otel2dd health: %s: %s\n", url_q, why);
    }
    curl_easy_cleanup(easy);
    curl_url_cleanup(u);
    curl_global_cleanup();
    o2d_buf_cleanup(&b.buf);
    return exit_code;
}
