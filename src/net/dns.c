/* dns.c - the "vm." zone responder (see dns.h).
 *
 * The zone is tiny and synthesised per query: the apex has an SOA and an
 * NS, and every leased VM name is a single label under it with one A
 * record.  All parsing and building goes through ldns.
 */
#include "net/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define ZONE "vm."
/* Leases change when VMs come and go; a short TTL keeps a resolver cache
 * from holding an old address for long. */
#define RR_TTL 5
/* Resolvers cache negative answers for min(SOA TTL, SOA minimum), so both
 * stay short: a name must resolve seconds after its VM was created. */
#define SOA_TEXT "vm. 5 IN SOA ns.vm. hostmaster.vm. 1 60 30 300 5"
#define NS_TEXT "vm. 5 IN NS ns.vm."
/* Advertised to EDNS clients (the 2020 DNS flag day value). */
#define EDNS_UDP_SIZE 1232
#define UDP_PLAIN_MAX 512
#define EDNS_BADVERS_HI 1   /* BADVERS (16) >> 4: the OPT's extended rcode */

#define DNS_TCP_MAX 16
#define DNS_TCP_TIMEOUT_MS 2000
#define DNS_TCP_SLOT_WAIT_MS 250
#define DNS_BIND_ATTEMPTS 8

static void pkt_freep(ldns_pkt **p) { if (*p) ldns_pkt_free(*p); }
static void rdf_freep(ldns_rdf **p) { if (*p) ldns_rdf_deep_free(*p); }
static void rr_freep(ldns_rr **p) { if (*p) ldns_rr_free(*p); }

/* Push rr into a section of p, which then owns it.  On failure rr is
 * freed; a NULL rr (a failed allocation upstream) also fails. */
static int
push(ldns_pkt *p, ldns_pkt_section sec, ldns_rr *rr)
{
	if (rr == NULL)
		return -1;
	if (!ldns_pkt_push_rr(p, sec, rr)) {
		ldns_rr_free(rr);
		return -1;
	}
	return 0;
}

static ldns_rr *
rr_from_text(const char *text)
{
	ldns_rr *rr = NULL;

	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		return NULL;
	return rr;
}

/* The A record for a VM.  The owner is the name as asked, case and all:
 * resolvers using 0x20 randomisation compare it with what they sent. */
static ldns_rr *
a_rr(const ldns_rdf *owner, struct in_addr addr)
{
	_cleanup_(rr_freep) ldns_rr *rr = ldns_rr_new();
	ldns_rdf *name = ldns_rdf_clone(owner);
	ldns_rdf *rd = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, sizeof(addr),
	    &addr);

	if (rr == NULL || name == NULL || rd == NULL) {
		if (name)
			ldns_rdf_deep_free(name);
		if (rd)
			ldns_rdf_deep_free(rd);
		return NULL;
	}
	ldns_rr_set_owner(rr, name);
	ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, RR_TTL);
	if (!ldns_rr_push_rdf(rr, rd)) {
		ldns_rdf_deep_free(rd);
		return NULL;
	}
	return TAKE_PTR(rr);
}

/* Look the single label of a `<label>.vm.` name up.  Labels that cannot
 * be VM names (escaped dots, '_', ...) are never passed to fn, so fn only
 * ever sees what name_valid() accepts. */
static bool
lookup_label(const ldns_rdf *name, dns_lookup_fn fn, void *ctx,
    struct in_addr *ret)
{
	_cleanup_(rdf_freep) ldns_rdf *label = ldns_dname_label(name, 0);
	_cleanup_free_ char *text = NULL;
	size_t n;

	if (fn == NULL || label == NULL || (text = ldns_rdf2str(label)) == NULL)
		return false;
	n = strlen(text);
	if (n > 0 && text[n - 1] == '.')
		text[n - 1] = '\0';
	if (!name_valid(text))
		return false;
	return fn(ctx, text, ret) == 1;
}

/* Fill r's rcode and sections for one question.  -1 only on allocation
 * failure. */
static int
answer_question(ldns_pkt *r, const ldns_rr *qrr, dns_lookup_fn fn, void *ctx)
{
	const ldns_rdf *qname = ldns_rr_owner(qrr);
	ldns_rr_type qtype = ldns_rr_get_type(qrr);
	ldns_rr_class qclass = ldns_rr_get_class(qrr);
	_cleanup_(rdf_freep) ldns_rdf *zone = ldns_dname_new_frm_str(ZONE);
	_cleanup_(rdf_freep) ldns_rdf *name = ldns_rdf_clone(qname);
	struct in_addr addr;
	bool apex;

	if (zone == NULL || name == NULL)
		return -1;
	/* Compare lowercased; the reply still carries the question as asked. */
	ldns_dname2canonical(name);
	apex = ldns_dname_compare(name, zone) == 0;
	/* We are authoritative for vm. in class IN only and recurse for
	 * nobody; zone transfers are not offered. */
	if ((qclass != LDNS_RR_CLASS_IN && qclass != LDNS_RR_CLASS_ANY) ||
	    (!apex && !ldns_dname_is_subdomain(name, zone)) ||
	    qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR) {
		ldns_pkt_set_rcode(r, LDNS_RCODE_REFUSED);
		return 0;
	}
	ldns_pkt_set_aa(r, true);

	if (apex) {
		bool any = qtype == LDNS_RR_TYPE_ANY;
		bool data = false;
		if (qtype == LDNS_RR_TYPE_SOA || any) {
			if (push(r, LDNS_SECTION_ANSWER, rr_from_text(SOA_TEXT)) < 0)
				return -1;
			data = true;
		}
		if (qtype == LDNS_RR_TYPE_NS || any) {
			if (push(r, LDNS_SECTION_ANSWER, rr_from_text(NS_TEXT)) < 0)
				return -1;
			data = true;
		}
		/* NODATA: the SOA tells the resolver how long to cache that. */
		if (!data)
			return push(r, LDNS_SECTION_AUTHORITY, rr_from_text(SOA_TEXT));
		return 0;
	}

	/* VMs are exactly one label deep and have no children, so a deeper
	 * name cannot exist (RFC 8020: NXDOMAIN, not NODATA). */
	if (ldns_dname_label_count(name) != ldns_dname_label_count(zone) + 1 ||
	    !lookup_label(name, fn, ctx, &addr)) {
		ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
		return push(r, LDNS_SECTION_AUTHORITY, rr_from_text(SOA_TEXT));
	}
	if (qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_ANY)
		return push(r, LDNS_SECTION_ANSWER, a_rr(qname, addr));
	return push(r, LDNS_SECTION_AUTHORITY, rr_from_text(SOA_TEXT));
}

static int
push_question(ldns_pkt *r, const ldns_pkt *q)
{
	return push(r, LDNS_SECTION_QUESTION,
	    ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(q), 0)));
}

int
dns_answer(const uint8_t *query, size_t len, dns_lookup_fn fn, void *ctx,
    uint8_t **ret, size_t *ret_len)
{
	_cleanup_(pkt_freep) ldns_pkt *q = NULL;
	_cleanup_(pkt_freep) ldns_pkt *r = NULL;
	uint8_t *wire = NULL;
	size_t wire_len = 0, nq;
	bool is_query;

	if (query == NULL || len < LDNS_HEADER_SIZE ||
	    ldns_wire2pkt(&q, query, len) != LDNS_STATUS_OK)
		return -1;
	/* Answering a response invites two servers to bounce packets at each
	 * other forever; a header with nothing to answer gets silence too. */
	nq = ldns_rr_list_rr_count(ldns_pkt_question(q));
	is_query = ldns_pkt_get_opcode(q) == LDNS_PACKET_QUERY;
	if (ldns_pkt_qr(q) || (is_query && nq == 0))
		return -1;
	if ((r = ldns_pkt_new()) == NULL)
		return -1;
	ldns_pkt_set_id(r, ldns_pkt_id(q));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
	ldns_pkt_set_rd(r, ldns_pkt_rd(q));
	/* RFC 4035: CD is copied, like RD.  RA stays clear: we do not
	 * recurse. */
	ldns_pkt_set_cd(r, ldns_pkt_cd(q));
	/* EDNS: a minimal OPT (our buffer size, DO copied per RFC 3225, no
	 * options) when the query had one, none otherwise (RFC 6891 7). */
	if (ldns_pkt_edns(q)) {
		ldns_pkt_set_edns_udp_size(r, EDNS_UDP_SIZE);
		ldns_pkt_set_edns_do(r, ldns_pkt_edns_do(q));
	}

	if (!is_query) {
		ldns_pkt_set_rcode(r, LDNS_RCODE_NOTIMPL);
		if (nq == 1 && push_question(r, q) < 0)
			return -1;
	} else if (nq > 1) {
		/* No question is echoed: which one would it be? */
		ldns_pkt_set_rcode(r, LDNS_RCODE_FORMERR);
	} else if (ldns_pkt_edns(q) && ldns_pkt_edns_version(q) > 0) {
		/* We speak EDNS version 0 only; BADVERS lets the client retry
		 * with it (RFC 6891 6.1.3). */
		ldns_pkt_set_edns_extended_rcode(r, EDNS_BADVERS_HI);
		if (push_question(r, q) < 0)
			return -1;
	} else {
		if (push_question(r, q) < 0 ||
		    answer_question(r, ldns_rr_list_rr(ldns_pkt_question(q), 0),
		    fn, ctx) < 0)
			return -1;
	}

	if (ldns_pkt2wire(&wire, r, &wire_len) != LDNS_STATUS_OK)
		return -1;
	/* Cannot happen: the question is at most 259 octets, the other
	 * records are at most an SOA and an NS, and an A comes only for a
	 * one-label name.  Dropping beats sending a reply a plain UDP client
	 * would see cut off, and saves a truncation path nobody would use. */
	if (wire_len > UDP_PLAIN_MAX) {
		log_warnx("dns: dropping an oversized reply (%zu bytes)", wire_len);
		free(wire);
		return -1;
	}
	*ret = wire;
	*ret_len = wire_len;
	return 0;
}

/* The server ---------------------------------------------------------- */

struct tcp_client {
	struct dns_server *s;
	pthread_t th;
	int fd;
	bool used;      /* th is running or waits to be joined (tcp thread only) */
	bool done;      /* th has finished its work (under s->mu) */
};

struct dns_server {
	dns_lookup_fn fn;
	void *ctx;
	unsigned port;
	int udp_fd, tcp_fd;
	/* An eventfd that becomes readable, for good, when we stop: every
	 * thread polls it next to its socket. */
	int stop_fd;
	pthread_t udp_th, tcp_th;
	bool udp_started, tcp_started;
	pthread_mutex_t mu;
	pthread_cond_t slot_freed;   /* a client thread finished (under mu) */
	struct tcp_client clients[DNS_TCP_MAX];
};

/* Wait for events on fd.  1 when ready, 0 when the deadline passed or
 * the server is stopping, -1 on error. */
static int
wait_fd(const struct dns_server *s, int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - time_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p[2] = {
			{ .fd = fd, .events = events },
			{ .fd = s->stop_fd, .events = POLLIN },
		};
		int n = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p[1].revents)
			return 0;
		if (p[0].revents)
			return 1;
	}
}

/* Read exactly n bytes by the deadline.  0 on success, -1 on EOF, error,
 * timeout or stop: the caller closes the connection in every case. */
static int
read_full(const struct dns_server *s, int fd, uint8_t *buf, size_t n,
    long long deadline)
{
	while (n > 0) {
		if (wait_fd(s, fd, POLLIN, deadline) <= 0)
			return -1;
		ssize_t got = recv(fd, buf, n, MSG_DONTWAIT);
		if (got == 0)
			return -1;
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		buf += got;
		n -= (size_t)got;
	}
	return 0;
}

static int
write_full(const struct dns_server *s, int fd, const uint8_t *buf, size_t n,
    long long deadline)
{
	while (n > 0) {
		if (wait_fd(s, fd, POLLOUT, deadline) <= 0)
			return -1;
		ssize_t put = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (put < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		buf += put;
		n -= (size_t)put;
	}
	return 0;
}

/* Answer one length-prefixed query.  -1 ends the connection: on a stream
 * there is no way to skip a message we will not answer. */
static int
tcp_serve_one(struct dns_server *s, int fd)
{
	uint8_t hdr[2];
	_cleanup_free_ uint8_t *q = NULL;
	_cleanup_free_ uint8_t *r = NULL;
	_cleanup_free_ uint8_t *out = NULL;
	size_t qlen, rlen;
	/* The timeout covers the idle wait and the whole message, so a
	 * client trickling bytes cannot hold a slot for long either. */
	long long deadline = time_mono_ms() + DNS_TCP_TIMEOUT_MS;

	if (read_full(s, fd, hdr, sizeof(hdr), deadline) < 0)
		return -1;
	qlen = (size_t)hdr[0] << 8 | hdr[1];
	if (qlen == 0)
		return -1;
	q = xmalloc(qlen);
	if (read_full(s, fd, q, qlen, deadline) < 0 ||
	    dns_answer(q, qlen, s->fn, s->ctx, &r, &rlen) < 0)
		return -1;
	/* One buffer, one send: the prefix and the message in one segment. */
	out = xmalloc(rlen + 2);
	out[0] = (uint8_t)(rlen >> 8);
	out[1] = (uint8_t)(rlen & 0xff);
	memcpy(out + 2, r, rlen);
	return write_full(s, fd, out, rlen + 2,
	    time_mono_ms() + DNS_TCP_TIMEOUT_MS);
}

static void *
tcp_client_main(void *arg)
{
	struct tcp_client *c = arg;
	struct dns_server *s = c->s;

	/* RFC 7766: a client may send several queries on one connection. */
	while (tcp_serve_one(s, c->fd) == 0)
		;
	close(c->fd);
	pthread_mutex_lock(&s->mu);
	c->done = true;
	pthread_cond_signal(&s->slot_freed);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Join the clients that finished and return a free slot, or NULL. */
static struct tcp_client *
tcp_slot(struct dns_server *s)
{
	struct tcp_client *free_slot = NULL;

	for (int i = 0; i < DNS_TCP_MAX; i++) {
		struct tcp_client *c = &s->clients[i];
		if (c->used) {
			pthread_mutex_lock(&s->mu);
			bool done = c->done;
			pthread_mutex_unlock(&s->mu);
			if (!done)
				continue;
			pthread_join(c->th, NULL);
			c->used = false;
		}
		if (free_slot == NULL)
			free_slot = c;
	}
	return free_slot;
}

/* 1 when fd is readable, 0 to look again (EINTR), -1 once the server is
 * stopping. */
static int
wait_in(struct dns_server *s, int fd)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = s->stop_fd, .events = POLLIN },
	};

	if (poll(p, 2, -1) < 0) {
		if (errno != EINTR) {
			log_warn("dns: poll");
			sleep_ms(100);
		}
		return 0;
	}
	if (p[1].revents)
		return -1;
	return p[0].revents ? 1 : 0;
}

static void *
tcp_main(void *arg)
{
	struct dns_server *s = arg;

	for (;;) {
		int w = wait_in(s, s->tcp_fd);
		if (w < 0)
			break;
		if (w == 0)
			continue;
		int fd = accept4(s->tcp_fd, NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			/* Out of fds or memory: the listener stays readable,
			 * so back off instead of spinning. */
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("dns: accept");
				(void)wait_fd(s, -1, 0, time_mono_ms() + 100);
			}
			continue;
		}
		struct tcp_client *c = tcp_slot(s);
		/* Full: a client that has just closed its connection may not
		 * have been noticed yet, so wait a moment for a slot. */
		long long slot_deadline = time_mono_ms() + DNS_TCP_SLOT_WAIT_MS;
		while (c == NULL && time_mono_ms() < slot_deadline) {
			pthread_mutex_lock(&s->mu);
			cond_wait_ms(&s->slot_freed, &s->mu, 20);
			pthread_mutex_unlock(&s->mu);
			c = tcp_slot(s);
		}
		if (c == NULL) {
			/* Still full: closing lets the client retry or fall
			 * back rather than wait on a queue we never serve. */
			log_debug("dns: %d TCP clients already, closing a new one",
			    DNS_TCP_MAX);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->done = false;
		int rc = pthread_create(&c->th, NULL, tcp_client_main, c);
		if (rc != 0) {
			errno = rc;
			log_warn("dns: start TCP client thread");
			close(fd);
			continue;
		}
		c->used = true;
	}
	/* stop_fd is readable now, so every client is on its way out. */
	for (int i = 0; i < DNS_TCP_MAX; i++)
		if (s->clients[i].used)
			pthread_join(s->clients[i].th, NULL);
	return NULL;
}

static void *
udp_main(void *arg)
{
	struct dns_server *s = arg;
	/* As big as a datagram gets, so nothing arrives cut off. */
	_cleanup_free_ uint8_t *buf = xmalloc(65536);

	for (;;) {
		int w = wait_in(s, s->udp_fd);
		if (w < 0)
			break;
		if (w == 0)
			continue;
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(s->udp_fd, buf, 65536, MSG_DONTWAIT,
		    (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			continue;
		_cleanup_free_ uint8_t *r = NULL;
		size_t rlen;
		if (dns_answer(buf, (size_t)n, s->fn, s->ctx, &r, &rlen) < 0)
			continue;
		/* Never block the only UDP thread on one client: a reply
		 * that does not fit the send buffer now is dropped, and the
		 * client asks again. */
		if (sendto(s->udp_fd, r, rlen, MSG_DONTWAIT | MSG_NOSIGNAL,
		    (struct sockaddr *)&from, fromlen) < 0)
			log_debug("dns: sendto: %s", strerror(errno));
	}
	return NULL;
}

static int
bind_fail(struct bn_err *err, int e, const char *proto, const char *addr,
    unsigned port)
{
	bn_fail(err, BN_ESYS, e, "dns: bind %s %s:%u", proto, addr, port);
	if (e == EADDRINUSE)
		return bn_err_hint(err, "another DNS server (dnsmasq, a second "
		    "bangerd?) already uses port %u on %s; stop it or set "
		    "\"dns_port\" in config.json", port, addr);
	if (e == EACCES)
		return bn_err_hint(err, "ports below 1024 need "
		    "CAP_NET_BIND_SERVICE; run bangerd as root or set "
		    "\"dns_port\" above 1023 in config.json");
	if (e == EADDRNOTAVAIL)
		return bn_err_hint(err, "%s is not an address of this host; "
		    "the bridge must be up before the DNS responder starts",
		    addr);
	return -1;
}

/* Bind both sockets to one port.  With port 0 the kernel picks the UDP
 * port and TCP may find that port taken by someone else's TCP socket:
 * then start again with a fresh one. */
static int
open_sockets(struct dns_server *s, struct sockaddr_in sa, unsigned port,
    const char *addr, struct bn_err *err)
{
	static const int one = 1;

	for (int attempt = 1;; attempt++) {
		_cleanup_close_ int u = -1;
		_cleanup_close_ int t = -1;
		socklen_t salen = sizeof(sa);

		sa.sin_port = htons((uint16_t)port);
		/* No SO_REUSEADDR on UDP: on Linux it would let a second
		 * daemon bind the same port and silently steal its queries,
		 * and UDP has no TIME_WAIT that it would help with. */
		if ((u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0)) < 0)
			return bn_fail(err, BN_ESYS, errno, "dns: udp socket");
		if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return bind_fail(err, errno, "udp", addr, port);
		if (getsockname(u, (struct sockaddr *)&sa, &salen) < 0)
			return bn_fail(err, BN_ESYS, errno, "dns: getsockname");

		if ((t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0)) < 0)
			return bn_fail(err, BN_ESYS, errno, "dns: tcp socket");
		/* A restarted bangerd must not wait for the old connections'
		 * TIME_WAIT to end. */
		if (setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) < 0)
			return bn_fail(err, BN_ESYS, errno, "dns: SO_REUSEADDR");
		if (bind(t, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			int e = errno;
			if (port == 0 && e == EADDRINUSE &&
			    attempt < DNS_BIND_ATTEMPTS)
				continue;
			return bind_fail(err, e, "tcp", addr,
			    ntohs(sa.sin_port));
		}
		if (listen(t, 64) < 0)
			return bn_fail(err, BN_ESYS, errno, "dns: listen");
		s->port = ntohs(sa.sin_port);
		s->udp_fd = TAKE_FD(u);
		s->tcp_fd = TAKE_FD(t);
		return 0;
	}
}

int
dns_server_start(const char *addr, unsigned port, dns_lookup_fn fn,
    void *ctx, struct dns_server **ret, struct bn_err *err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct dns_server *s;
	int rc;

	if (addr == NULL || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return bn_fail(err, BN_EINVAL, 0, "dns: invalid listen address "
		    "'%s': want an IPv4 address such as 172.30.0.1",
		    addr ? addr : "");
	if (port > 65535)
		return bn_fail(err, BN_EINVAL, 0, "dns: invalid port %u", port);
	if (fn == NULL)
		return bn_fail(err, BN_EINVAL, 0, "dns: no lookup function");

	s = xcalloc(1, sizeof(*s));
	s->fn = fn;
	s->ctx = ctx;
	s->udp_fd = s->tcp_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->slot_freed, NULL);
	if ((s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		bn_fail(err, BN_ESYS, errno, "dns: eventfd");
		goto fail;
	}
	if (open_sockets(s, sa, port, addr, err) < 0)
		goto fail;
	if ((rc = pthread_create(&s->udp_th, NULL, udp_main, s)) != 0) {
		bn_fail(err, BN_ESYS, rc, "dns: start UDP thread");
		goto fail;
	}
	s->udp_started = true;
	if ((rc = pthread_create(&s->tcp_th, NULL, tcp_main, s)) != 0) {
		bn_fail(err, BN_ESYS, rc, "dns: start TCP thread");
		goto fail;
	}
	s->tcp_started = true;
	log_debug("dns: serving %s port %u (udp, tcp)", addr, s->port);
	*ret = s;
	return 0;
fail:
	dns_server_stop(s);
	return -1;
}

unsigned
dns_server_port(const struct dns_server *s)
{
	return s->port;
}

void
dns_server_stop(struct dns_server *s)
{
	if (s == NULL)
		return;
	if (s->stop_fd >= 0) {
		uint64_t one = 1;
		/* Cannot fail short of a full counter, which one write
		 * from zero never reaches. */
		(void)!write(s->stop_fd, &one, sizeof(one));
	}
	if (s->udp_started)
		pthread_join(s->udp_th, NULL);
	if (s->tcp_started)
		pthread_join(s->tcp_th, NULL);
	if (s->udp_fd >= 0)
		close(s->udp_fd);
	if (s->tcp_fd >= 0)
		close(s->tcp_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	pthread_cond_destroy(&s->slot_freed);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
