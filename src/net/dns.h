/* dns.h - the authoritative responder for the "vm." zone.
 *
 * bangerd answers `<name>.vm. A` from the address leases so that users can
 * reach a VM by name once the host resolver forwards ~vm to the bridge.
 * dns_answer() is the whole policy and does no I/O, so the unit tests can
 * drive it packet by packet; dns_server_*() wraps it in a UDP and a TCP
 * listener.
 */
#ifndef BANGER_DNS_H
#define BANGER_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Returns 1 and fills *ret when `label` (a single lowercase DNS label, the
 * VM name, already checked with name_valid()) has a lease, 0 when not.
 * Called from the server threads, several at once: must be thread-safe,
 * and should not block (it runs on the path of every query). */
typedef int (*dns_lookup_fn)(void *ctx, const char *label, struct in_addr *ret);

/* Answer one query packet.  Pure: no I/O besides calling fn.  Returns 0
 * with a malloc'd reply in *ret (*ret_len bytes), or -1 when the packet
 * should be dropped (unparseable, a response, no question).  Replies
 * always fit in 512 bytes, so the same reply serves UDP and TCP. */
int dns_answer(const uint8_t *query, size_t len, dns_lookup_fn fn, void *ctx,
    uint8_t **ret, size_t *ret_len);

struct dns_server;

/* Serve UDP and TCP on addr:port (an IPv4 dotted quad), each in its own
 * thread.  Port 0 picks a free port, the same for both; see
 * dns_server_port().  TCP uses 2-byte length framing, closes a
 * connection idle for 2 s and serves at most 16 connections at once. */
int dns_server_start(const char *addr, unsigned port, dns_lookup_fn fn,
    void *ctx, struct dns_server **ret, struct bn_err *err);
/* The port both sockets are bound to. */
unsigned dns_server_port(const struct dns_server *s);
/* Stop every thread, close every socket and free s; NULL is fine.  Returns
 * once no thread can call fn any more. */
void dns_server_stop(struct dns_server *s);

#endif
