/* LD_PRELOAD shim for the anchors: DCMTK 3.6.7's wlmscpfs has no listen-address option and binds the
 * wildcard address; the benchmark must listen on loopback only, so wildcard binds become loopback binds.
 * Built by bench/run.sh: cc -shared -fPIC -O2 -o bind-loopback.so bind-loopback.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static bind_function next_bind = NULL;
  if (next_bind == NULL) next_bind = (bind_function)dlsym(RTLD_NEXT, "bind");
  if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_in v4;
    memcpy(&v4, addr, sizeof v4);
    if (v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
      v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return next_bind(fd, (const struct sockaddr *)&v4, sizeof v4);
    }
  } else if (addr != NULL && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 v6;
    memcpy(&v6, addr, sizeof v6);
    if (memcmp(&v6.sin6_addr, &in6addr_any, sizeof v6.sin6_addr) == 0) {
      int only_v6 = 0;
      socklen_t size = sizeof only_v6;
      getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only_v6, &size);
      if (only_v6) {
        v6.sin6_addr = in6addr_loopback;
      } else {
        /* a dual-stack socket: ::ffff:127.0.0.1 keeps it to IPv4 loopback */
        memset(&v6.sin6_addr, 0, sizeof v6.sin6_addr);
        v6.sin6_addr.s6_addr[10] = 0xff;
        v6.sin6_addr.s6_addr[11] = 0xff;
        v6.sin6_addr.s6_addr[12] = 127;
        v6.sin6_addr.s6_addr[15] = 1;
      }
      return next_bind(fd, (const struct sockaddr *)&v6, sizeof v6);
    }
  }
  return next_bind(fd, addr, len);
}
