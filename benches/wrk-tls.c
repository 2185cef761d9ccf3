// Preloaded into wrk by benches/run-tls.sh (LD_PRELOAD), to see and steer TLS resumption.
// wrk reuses one SSL object per connection slot: on reconnect it calls SSL_clear, which keeps
// the last session, so the next handshake offers its ticket and is resumed.
//   WRK_TLS_FRESH=1  drop that session in SSL_clear: every connection does a full handshake
//   WRK_TLS_COUNT=1  print "full=N resumed=M" (handshakes wrk completed) to stderr at exit
// Built by run-tls.sh: cc -shared -fPIC -o wrk-tls.so wrk-tls.c (no OpenSSL headers needed).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
int SSL_set_session(SSL *s, void *session);
int SSL_session_reused(const SSL *s);

static long full, resumed; // wrk -t1: one thread, no locking needed

int SSL_clear(SSL *s) {
  static int (*real)(SSL *);
  if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
  int r = real(s);
  if (getenv("WRK_TLS_FRESH")) SSL_set_session(s, NULL);
  return r;
}

int SSL_connect(SSL *s) {
  static int (*real)(SSL *);
  if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
  int r = real(s);
  if (r == 1) SSL_session_reused(s) ? resumed++ : full++;
  return r;
}

__attribute__((destructor)) static void report(void) {
  if (getenv("WRK_TLS_COUNT")) fprintf(stderr, "full=%ld resumed=%ld\n", full, resumed);
}
