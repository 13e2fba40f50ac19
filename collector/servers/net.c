/*
 * net.c: parsing "host:port" endpoints and opening listening sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "o2d.h"

static int split_endpoint(const char *ep, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    const char *h = ep;
    size_t hl;
    if (ep[0] == '[') {
        const char *close = strchr(ep, ']');
        if (close == NULL || close[1] != ':') {
            return -1;
        }
        h = ep + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(ep, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t)(colon - ep);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (hl >= hostlen || pl == 0 || pl >= portlen || strspn(p, "0123456789") != pl ||
        atoi(p) > 65535) {
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

int o2d_listen(const char *endpoint, int backlog, int *fd, uint16_t *port, char *err, size_t errlen)
{
    char host[256], portstr[8];
    if (split_endpoint(endpoint, host, sizeof(host), portstr, sizeof(portstr)) != 0) {
        snprintf(err, errlen, "endpoint '%s' is not host:port", endpoint);
        return O2D_ERR_CONFIG;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", endpoint, gai_strerror(gai));
        return O2D_ERR_CONFIG;
    }
    int rv = O2D_ERR_SYSTEM;
    int s = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0) {
            snprintf(err, errlen, "socket for '%s': %s", endpoint, strerror(errno));
            continue;
        }
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, backlog) != 0) {
            snprintf(err, errlen, "cannot listen on '%s': %s", endpoint, strerror(errno));
            close(s);
            s = -1;
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(s, (struct sockaddr *)&ss, &sl);
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
        *fd = s;
        rv = O2D_OK;
        break;
    }
    freeaddrinfo(res);
    return rv;
}
