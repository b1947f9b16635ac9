/* test_dns: the "vm." responder, packet by packet and over real sockets. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/dns.h"
#include "tap.h"

#define LONG_VM "a23456789012345678901234567890123456789012345678901234567890123"

struct fake {
	const char *names[4];
	const char *addrs[4];
	int calls;              /* how often the responder asked */
	char last[64];          /* the label it asked for last */
	pthread_mutex_t mu;
};

static struct fake leases = {
	.names = { "web", "db", LONG_VM, NULL },
	.addrs = { "172.30.0.10", "172.30.0.11", "172.30.0.12", NULL },
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

static int
fake_lookup(void *ctx, const char *label, struct in_addr *ret)
{
	struct fake *f = ctx;

	int found = 0;

	/* The server calls this from several threads, as bangerd's will. */
	pthread_mutex_lock(&f->mu);
	f->calls++;
	snprintf(f->last, sizeof(f->last), "%s", label);
	for (int i = 0; f->names[i]; i++)
		if (strcmp(f->names[i], label) == 0)
			found = inet_pton(AF_INET, f->addrs[i], ret) == 1;
	pthread_mutex_unlock(&f->mu);
	return found;
}

/* A query as a stub resolver sends it, for the caller to adjust. */
static ldns_pkt *
query_new(const char *name, ldns_rr_type type, uint16_t id, bool rd)
{
	ldns_pkt *p = NULL;

	if (ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN,
	    rd ? LDNS_RD : 0) != LDNS_STATUS_OK)
		return NULL;
	ldns_pkt_set_id(p, id);
	return p;
}

/* Wire form of p; frees p. */
static uint8_t *
to_wire(ldns_pkt *p, size_t *len)
{
	uint8_t *w = NULL;

	if (p == NULL)
		return NULL;
	if (ldns_pkt2wire(&w, p, len) != LDNS_STATUS_OK)
		w = NULL;
	ldns_pkt_free(p);
	return w;
}

/* dns_answer() on p (freed), the reply parsed; NULL when dropped.
 * *wire_len gets the reply's size when not NULL. */
static ldns_pkt *
ask_pkt(ldns_pkt *p, size_t *wire_len)
{
	size_t qlen, rlen;
	_cleanup_free_ uint8_t *q = to_wire(p, &qlen);
	_cleanup_free_ uint8_t *r = NULL;
	ldns_pkt *reply = NULL;

	if (q == NULL || dns_answer(q, qlen, fake_lookup, &leases, &r,
	    &rlen) < 0)
		return NULL;
	if (wire_len)
		*wire_len = rlen;
	if (ldns_wire2pkt(&reply, r, rlen) != LDNS_STATUS_OK)
		return NULL;
	return reply;
}

static ldns_pkt *
ask(const char *name, ldns_rr_type type)
{
	return ask_pkt(query_new(name, type, 0x1234, true), NULL);
}

static void pkt_freep(ldns_pkt **p) { if (*p) ldns_pkt_free(*p); }
#define _cleanup_pkt_ _cleanup_(pkt_freep)

/* The text of an rdf, in a per-thread buffer that the next call reuses. */
static const char *
rdf_text(const ldns_rdf *rdf)
{
	static __thread char buf[512];
	char *s = rdf ? ldns_rdf2str(rdf) : NULL;

	snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
	free(s);
	return buf;
}

static bool
header_ok(const ldns_pkt *r, uint16_t id, bool rd)
{
	return ldns_pkt_id(r) == id && ldns_pkt_qr(r) && !ldns_pkt_ra(r) &&
	    ldns_pkt_rd(r) == rd && !ldns_pkt_tc(r) &&
	    ldns_pkt_get_opcode(r) == LDNS_PACKET_QUERY;
}

/* The question section is one question, exactly as asked. */
static bool
question_is(const ldns_pkt *r, const char *name, ldns_rr_type type)
{
	const ldns_rr_list *qs = ldns_pkt_question(r);

	if (ldns_rr_list_rr_count(qs) != 1)
		return false;
	const ldns_rr *q = ldns_rr_list_rr(qs, 0);
	return strcmp(rdf_text(ldns_rr_owner(q)), name) == 0 &&
	    ldns_rr_get_type(q) == type;
}

/* Exactly one record in authority: the zone's SOA with our values.  Names
 * compare without case: ldns compresses "vm." into a pointer to the
 * question's "vM.", which is the same name. */
static bool
authority_is_soa(const ldns_pkt *r)
{
	const ldns_rr_list *ns = ldns_pkt_authority(r);

	if (ldns_rr_list_rr_count(ns) != 1)
		return false;
	const ldns_rr *soa = ldns_rr_list_rr(ns, 0);
	return ldns_rr_get_type(soa) == LDNS_RR_TYPE_SOA &&
	    strcasecmp(rdf_text(ldns_rr_owner(soa)), "vm.") == 0 &&
	    strcasecmp(rdf_text(ldns_rr_rdf(soa, 0)), "ns.vm.") == 0 &&
	    strcasecmp(rdf_text(ldns_rr_rdf(soa, 1)), "hostmaster.vm.") == 0 &&
	    ldns_rdf2native_int32(ldns_rr_rdf(soa, 2)) == 1 &&
	    ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)) == 5 &&
	    ldns_rr_ttl(soa) <= 5;
}

static int
test_a_hit(void)
{
	_cleanup_pkt_ ldns_pkt *r = ask("web.vm.", LDNS_RR_TYPE_A);

	fail_unless(r != NULL, "no reply");
	fail_unless(header_ok(r, 0x1234, true), "header");
	fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR, "rcode %d",
	    ldns_pkt_get_rcode(r));
	fail_unless(ldns_pkt_aa(r), "AA clear");
	fail_unless(question_is(r, "web.vm.", LDNS_RR_TYPE_A), "question");
	fail_unless(ldns_pkt_ancount(r) == 1, "%d answers", ldns_pkt_ancount(r));
	fail_unless(ldns_pkt_nscount(r) == 0 && ldns_pkt_arcount(r) == 0,
	    "extra sections");
	const ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r), 0);
	fail_unless(ldns_rr_get_type(a) == LDNS_RR_TYPE_A, "type");
	fail_unless(ldns_rr_get_class(a) == LDNS_RR_CLASS_IN, "class");
	fail_unless(ldns_rr_ttl(a) == 5, "ttl %u", ldns_rr_ttl(a));
	fail_unless(strcmp(rdf_text(ldns_rr_owner(a)), "web.vm.") == 0, "owner");
	fail_unless(strcmp(rdf_text(ldns_rr_rdf(a, 0)), "172.30.0.10") == 0,
	    "address %s", rdf_text(ldns_rr_rdf(a, 0)));
	fail_unless(strcmp(leases.last, "web") == 0, "looked up '%s'",
	    leases.last);
	return 0;
}

/* 0x20 randomisation: matched without case, echoed with it. */
static int
test_case_insensitive(void)
{
	_cleanup_pkt_ ldns_pkt *r = ask("WeB.vM.", LDNS_RR_TYPE_A);

	fail_unless(r != NULL, "no reply");
	fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR, "rcode");
	fail_unless(question_is(r, "WeB.vM.", LDNS_RR_TYPE_A),
	    "question not echoed as asked");
	fail_unless(ldns_pkt_ancount(r) == 1, "no answer");
	const ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r), 0);
	fail_unless(strcmp(rdf_text(ldns_rr_owner(a)), "WeB.vM.") == 0,
	    "owner %s", rdf_text(ldns_rr_owner(a)));
	fail_unless(strcmp(leases.last, "web") == 0, "looked up '%s'",
	    leases.last);
	return 0;
}

static int
test_nodata(void)
{
	ldns_rr_type types[] = { LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_MX,
	    LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_SOA };

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		_cleanup_pkt_ ldns_pkt *r = ask("db.vm.", types[i]);
		fail_unless(r != NULL, "no reply for type %d", types[i]);
		fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR,
		    "type %d: rcode %d", types[i], ldns_pkt_get_rcode(r));
		fail_unless(ldns_pkt_aa(r), "AA clear");
		fail_unless(ldns_pkt_ancount(r) == 0, "type %d answered",
		    types[i]);
		fail_unless(authority_is_soa(r), "type %d: no SOA", types[i]);
	}
	return 0;
}

static int
test_any_returns_a(void)
{
	_cleanup_pkt_ ldns_pkt *r = ask("db.vm.", LDNS_RR_TYPE_ANY);

	fail_unless(r != NULL, "no reply");
	fail_unless(ldns_pkt_ancount(r) == 1, "%d answers", ldns_pkt_ancount(r));
	fail_unless(strcmp(rdf_text(ldns_rr_rdf(ldns_rr_list_rr(
	    ldns_pkt_answer(r), 0), 0)), "172.30.0.11") == 0, "address");
	return 0;
}

static int
test_unknown_nxdomain(void)
{
	_cleanup_pkt_ ldns_pkt *r = ask("nope.vm.", LDNS_RR_TYPE_A);

	fail_unless(r != NULL, "no reply");
	fail_unless(header_ok(r, 0x1234, true), "header");
	fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN, "rcode %d",
	    ldns_pkt_get_rcode(r));
	fail_unless(ldns_pkt_aa(r), "AA clear");
	fail_unless(ldns_pkt_ancount(r) == 0, "answers");
	fail_unless(authority_is_soa(r), "no SOA in authority");
	fail_unless(question_is(r, "nope.vm.", LDNS_RR_TYPE_A), "question");
	return 0;
}

/* VMs have no children, and labels that cannot be VM names never reach
 * the lookup. */
static int
test_deep_and_odd_names(void)
{
	const char *names[] = { "a.web.vm.", "x.y.vm.", "we_b.vm.",
	    "-web.vm.", "web\\.x.vm.", "w\\000b.vm." };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int before = leases.calls;
		_cleanup_pkt_ ldns_pkt *r = ask(names[i], LDNS_RR_TYPE_A);
		fail_unless(r != NULL, "%s: no reply", names[i]);
		fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN,
		    "%s: rcode %d", names[i], ldns_pkt_get_rcode(r));
		fail_unless(authority_is_soa(r), "%s: no SOA", names[i]);
		fail_unless(leases.calls == before, "%s: lookup called with '%s'",
		    names[i], leases.last);
	}
	return 0;
}

static int
test_other_zones_refused(void)
{
	const char *names[] = { "example.com.", "web.vm.example.", "xvm.",
	    "vm.com.", "." };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_pkt_ ldns_pkt *r = ask(names[i], LDNS_RR_TYPE_A);
		fail_unless(r != NULL, "%s: no reply", names[i]);
		fail_unless(header_ok(r, 0x1234, true), "%s: header", names[i]);
		fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_REFUSED,
		    "%s: rcode %d", names[i], ldns_pkt_get_rcode(r));
		fail_unless(!ldns_pkt_aa(r), "%s: AA set", names[i]);
		fail_unless(ldns_pkt_ancount(r) == 0 && ldns_pkt_nscount(r) == 0,
		    "%s: records", names[i]);
	}
	/* Other classes (CHAOS version.bind and friends) and zone
	 * transfers are refused too. */
	ldns_pkt *p = NULL;
	fail_unless(ldns_pkt_query_new_frm_str(&p, "web.vm.", LDNS_RR_TYPE_A,
	    LDNS_RR_CLASS_CH, 0) == LDNS_STATUS_OK, "build");
	_cleanup_pkt_ ldns_pkt *r = ask_pkt(p, NULL);
	fail_unless(r && ldns_pkt_get_rcode(r) == LDNS_RCODE_REFUSED, "CH");
	_cleanup_pkt_ ldns_pkt *x = ask("vm.", LDNS_RR_TYPE_AXFR);
	fail_unless(x && ldns_pkt_get_rcode(x) == LDNS_RCODE_REFUSED, "AXFR");
	return 0;
}

static int
test_apex(void)
{
	_cleanup_pkt_ ldns_pkt *soa = ask("vm.", LDNS_RR_TYPE_SOA);
	_cleanup_pkt_ ldns_pkt *ns = ask("VM.", LDNS_RR_TYPE_NS);
	_cleanup_pkt_ ldns_pkt *a = ask("vm.", LDNS_RR_TYPE_A);

	fail_unless(soa && ns && a, "no reply");
	fail_unless(ldns_pkt_get_rcode(soa) == LDNS_RCODE_NOERROR &&
	    ldns_pkt_aa(soa) && ldns_pkt_ancount(soa) == 1, "SOA query");
	const ldns_rr *s = ldns_rr_list_rr(ldns_pkt_answer(soa), 0);
	fail_unless(ldns_rr_get_type(s) == LDNS_RR_TYPE_SOA &&
	    strcasecmp(rdf_text(ldns_rr_rdf(s, 0)), "ns.vm.") == 0, "SOA record");

	fail_unless(ldns_pkt_get_rcode(ns) == LDNS_RCODE_NOERROR &&
	    ldns_pkt_aa(ns) && ldns_pkt_ancount(ns) == 1, "NS query");
	const ldns_rr *n = ldns_rr_list_rr(ldns_pkt_answer(ns), 0);
	fail_unless(ldns_rr_get_type(n) == LDNS_RR_TYPE_NS &&
	    strcasecmp(rdf_text(ldns_rr_rdf(n, 0)), "ns.vm.") == 0, "NS record");
	fail_unless(question_is(ns, "VM.", LDNS_RR_TYPE_NS), "NS question");

	fail_unless(ldns_pkt_get_rcode(a) == LDNS_RCODE_NOERROR &&
	    ldns_pkt_aa(a) && ldns_pkt_ancount(a) == 0 && authority_is_soa(a),
	    "A at the apex is not NODATA");
	return 0;
}

static int
test_id_and_flags_echoed(void)
{
	ldns_pkt *p = query_new("web.vm.", LDNS_RR_TYPE_A, 0xbeef, false);

	fail_unless(p != NULL, "build");
	ldns_pkt_set_cd(p, true);
	_cleanup_pkt_ ldns_pkt *r = ask_pkt(p, NULL);
	fail_unless(r != NULL, "no reply");
	fail_unless(header_ok(r, 0xbeef, false), "id %#x rd %d",
	    ldns_pkt_id(r), ldns_pkt_rd(r));
	fail_unless(ldns_pkt_cd(r), "CD not copied");

	_cleanup_pkt_ ldns_pkt *r2 = ask_pkt(query_new("nope.vm.",
	    LDNS_RR_TYPE_A, 0x0001, true), NULL);
	fail_unless(r2 && header_ok(r2, 0x0001, true), "NXDOMAIN header");
	return 0;
}

static int
test_garbage_dropped(void)
{
	/* Hand-made on purpose: ldns will not build broken packets. */
	static const uint8_t short_hdr[] = { 0x12, 0x34, 0x01, 0x00 };
	/* Claims one question and has none. */
	static const uint8_t no_body[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0,
	    0, 0, 0, 0 };
	/* A question whose name points at itself. */
	static const uint8_t loop[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0,
	    0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1 };
	/* A label running past the end. */
	static const uint8_t cut[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0,
	    0, 0, 0, 0, 3, 'w', 'e' };
	/* A well-formed header with no question at all. */
	static const uint8_t empty[] = { 0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0,
	    0, 0, 0, 0 };
	struct { const uint8_t *p; size_t n; } cases[] = {
		{ NULL, 0 }, { short_hdr, sizeof(short_hdr) },
		{ no_body, sizeof(no_body) }, { loop, sizeof(loop) },
		{ cut, sizeof(cut) }, { empty, sizeof(empty) },
	};
	uint8_t *r = NULL;
	size_t rlen = 0;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		fail_unless(dns_answer(cases[i].p, cases[i].n, fake_lookup,
		    &leases, &r, &rlen) == -1, "case %zu answered", i);

	/* Random bytes, then real queries with a few bytes flipped: whatever
	 * comes back must be a sane reply (run this under ASan to catch
	 * reads out of bounds). */
	size_t vlen;
	_cleanup_free_ uint8_t *valid = to_wire(query_new("web.vm.",
	    LDNS_RR_TYPE_A, 0x4242, true), &vlen);
	unsigned seed = 42;
	uint8_t buf[64];
	int answered = 0;
	fail_unless(valid && vlen <= sizeof(buf), "build");
	for (int i = 0; i < 20000; i++) {
		size_t n;
		if (i % 2) {
			n = (size_t)rand_r(&seed) % sizeof(buf);
			for (size_t j = 0; j < n; j++)
				buf[j] = (uint8_t)rand_r(&seed);
		} else {
			n = vlen - (size_t)rand_r(&seed) % 3;
			memcpy(buf, valid, n);
			for (int k = rand_r(&seed) % 3; k >= 0; k--)
				buf[(size_t)rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
		}
		if (dns_answer(buf, n, fake_lookup, &leases, &r, &rlen) == 0) {
			answered++;
			fail_unless(rlen >= 12 && rlen <= 512, "reply of %zu", rlen);
			fail_unless(r[0] == buf[0] && r[1] == buf[1], "id");
			fail_unless(r[2] & 0x80, "QR clear");
			free(r);
		}
	}
	fail_unless(answered > 1000, "only %d answered: fuzzing nothing",
	    answered);
	return 0;
}

static int
test_response_dropped(void)
{
	ldns_pkt *p = query_new("web.vm.", LDNS_RR_TYPE_A, 7, true);

	fail_unless(p != NULL, "build");
	ldns_pkt_set_qr(p, true);
	fail_unless(ask_pkt(p, NULL) == NULL, "a response was answered");
	return 0;
}

static int
test_formerr_and_notimp(void)
{
	ldns_pkt *p = query_new("web.vm.", LDNS_RR_TYPE_A, 9, true);
	ldns_rr *q2 = NULL;

	fail_unless(p != NULL, "build");
	fail_unless(ldns_rr_new_question_frm_str(&q2, "db.vm. IN A", NULL,
	    NULL) == LDNS_STATUS_OK, "question");
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q2);
	_cleanup_pkt_ ldns_pkt *r = ask_pkt(p, NULL);
	fail_unless(r != NULL, "two questions dropped");
	fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_FORMERR, "rcode %d",
	    ldns_pkt_get_rcode(r));
	fail_unless(ldns_pkt_id(r) == 9 && ldns_pkt_qr(r), "header");

	ldns_pkt_opcode ops[] = { LDNS_PACKET_NOTIFY, LDNS_PACKET_UPDATE,
	    LDNS_PACKET_IQUERY, LDNS_PACKET_STATUS };
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		p = query_new("web.vm.", LDNS_RR_TYPE_SOA, 10, false);
		fail_unless(p != NULL, "build");
		ldns_pkt_set_opcode(p, ops[i]);
		_cleanup_pkt_ ldns_pkt *n = ask_pkt(p, NULL);
		fail_unless(n != NULL, "opcode %d dropped", ops[i]);
		fail_unless(ldns_pkt_get_rcode(n) == LDNS_RCODE_NOTIMPL,
		    "opcode %d: rcode %d", ops[i], ldns_pkt_get_rcode(n));
		fail_unless(ldns_pkt_get_opcode(n) == ops[i], "opcode echoed");
		fail_unless(ldns_pkt_ancount(n) == 0 && !ldns_pkt_aa(n), "data");
	}
	return 0;
}

static int
test_edns(void)
{
	/* No OPT in, none out. */
	_cleanup_pkt_ ldns_pkt *plain = ask("web.vm.", LDNS_RR_TYPE_A);
	fail_unless(plain && !ldns_pkt_edns(plain), "OPT without EDNS");

	/* OPT in: a minimal OPT out, DO copied, our buffer size. */
	ldns_pkt *p = query_new("web.vm.", LDNS_RR_TYPE_A, 11, true);
	fail_unless(p != NULL, "build");
	ldns_pkt_set_edns_udp_size(p, 4096);
	ldns_pkt_set_edns_do(p, true);
	_cleanup_pkt_ ldns_pkt *r = ask_pkt(p, NULL);
	fail_unless(r != NULL, "no reply");
	fail_unless(ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR &&
	    ldns_pkt_ancount(r) == 1, "answer");
	fail_unless(ldns_pkt_edns(r), "no OPT");
	fail_unless(ldns_pkt_edns_udp_size(r) == 1232, "size %u",
	    ldns_pkt_edns_udp_size(r));
	fail_unless(ldns_pkt_edns_do(r), "DO not copied");
	fail_unless(ldns_pkt_edns_version(r) == 0 &&
	    ldns_pkt_edns_extended_rcode(r) == 0, "version/rcode");
	fail_unless(ldns_pkt_arcount(r) == 0, "additional records");

	/* An unknown EDNS version: BADVERS (16 = extended 1, rcode 0). */
	p = query_new("web.vm.", LDNS_RR_TYPE_A, 12, true);
	fail_unless(p != NULL, "build");
	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_version(p, 1);
	_cleanup_pkt_ ldns_pkt *b = ask_pkt(p, NULL);
	fail_unless(b != NULL, "no reply");
	fail_unless(ldns_pkt_edns(b) && ldns_pkt_edns_extended_rcode(b) == 1 &&
	    ldns_pkt_get_rcode(b) == 0 && ldns_pkt_ancount(b) == 0,
	    "not BADVERS: ext %u rcode %u", ldns_pkt_edns_extended_rcode(b),
	    ldns_pkt_get_rcode(b));
	fail_unless(ldns_pkt_edns_version(b) == 0, "our version");
	return 0;
}

/* The largest replies we can produce stay within plain UDP's 512. */
static int
test_reply_size(void)
{
	char name[300];
	size_t len;

	/* 3 * 64 + 59 + 4 = 255 octets on the wire, the most DNS allows. */
	snprintf(name, sizeof(name), "%s.%s.%s.%.58s.vm.", LONG_VM, LONG_VM,
	    LONG_VM, LONG_VM);
	ldns_pkt *p = query_new(name, LDNS_RR_TYPE_AAAA, 13, true);
	fail_unless(p != NULL, "build");
	ldns_pkt_set_edns_udp_size(p, 4096);
	_cleanup_pkt_ ldns_pkt *r = ask_pkt(p, &len);
	fail_unless(r && ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN, "reply");
	fail_unless(len <= 512, "%zu bytes", len);

	snprintf(name, sizeof(name), "%s.vm.", LONG_VM);
	p = query_new(name, LDNS_RR_TYPE_ANY, 14, true);
	fail_unless(p != NULL, "build");
	ldns_pkt_set_edns_udp_size(p, 4096);
	_cleanup_pkt_ ldns_pkt *a = ask_pkt(p, &len);
	fail_unless(a && ldns_pkt_ancount(a) == 1, "long VM name not found");
	fail_unless(len <= 512, "%zu bytes", len);
	return 0;
}

/* The server ----------------------------------------------------------- */

static int
count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
count_threads(int want)
{
	/* A joined thread can linger in /proc for a moment. */
	int n = count_dir("/proc/self/task");
	for (int i = 0; i < 100 && n != want; i++) {
		sleep_ms(10);
		n = count_dir("/proc/self/task");
	}
	return n;
}

static int
sock_to(int type, unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* recv with a timeout: bytes, 0 on EOF, -1 on error, -2 on timeout. */
static ssize_t
recv_ms(int fd, void *buf, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) <= 0)
		return -2;
	return recv(fd, buf, n, 0);
}

static ssize_t
recv_full_ms(int fd, uint8_t *buf, size_t n, int ms)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv_ms(fd, buf + got, n - got, ms);
		if (r <= 0)
			return r;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The reply has this id and exactly one answer, an A with addr. */
static bool
reply_has(const uint8_t *w, size_t n, uint16_t id, const char *addr)
{
	_cleanup_pkt_ ldns_pkt *r = NULL;

	if (ldns_wire2pkt(&r, w, n) != LDNS_STATUS_OK ||
	    ldns_pkt_id(r) != id || ldns_pkt_ancount(r) != 1)
		return false;
	return strcmp(rdf_text(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r),
	    0), 0)), addr) == 0;
}

static int
udp_query(unsigned port, const char *name, uint16_t id, const char *addr)
{
	size_t qlen;
	_cleanup_free_ uint8_t *q = to_wire(query_new(name, LDNS_RR_TYPE_A,
	    id, true), &qlen);
	_cleanup_close_ int fd = sock_to(SOCK_DGRAM, port);
	uint8_t buf[1024];

	fail_unless(q && fd >= 0, "socket");
	fail_unless(send(fd, q, qlen, 0) == (ssize_t)qlen, "send");
	ssize_t n = recv_ms(fd, buf, sizeof(buf), 2000);
	fail_unless(n > 0, "no UDP reply (%zd)", n);
	fail_unless(reply_has(buf, (size_t)n, id, addr), "UDP reply");
	return 0;
}

/* Append a length-prefixed query to out. */
static size_t
frame(uint8_t *out, const char *name, uint16_t id)
{
	size_t qlen;
	_cleanup_free_ uint8_t *q = to_wire(query_new(name, LDNS_RR_TYPE_A,
	    id, true), &qlen);

	out[0] = (uint8_t)(qlen >> 8);
	out[1] = (uint8_t)qlen;
	memcpy(out + 2, q, qlen);
	return qlen + 2;
}

static int
tcp_read_reply(int fd, uint16_t id, const char *addr)
{
	uint8_t hdr[2], buf[1024];

	fail_unless(recv_full_ms(fd, hdr, 2, 2000) == 2, "no length");
	size_t n = (size_t)hdr[0] << 8 | hdr[1];
	fail_unless(n > 0 && n <= sizeof(buf), "length %zu", n);
	fail_unless(recv_full_ms(fd, buf, n, 2000) == (ssize_t)n, "short reply");
	fail_unless(reply_has(buf, n, id, addr), "TCP reply for id %u", id);
	return 0;
}

static int
test_server(void)
{
	struct dns_server *s = NULL, *s2 = NULL;
	struct bn_err err = { 0 };
	unsigned port;
	uint8_t buf[2048];

	/* One round first, so that anything started lazily with the first
	 * thread (a sanitizer's helper thread) is in the baseline. */
	fail_unless(dns_server_start("127.0.0.1", 0, fake_lookup, &leases, &s,
	    &err) == 0, "start: %s", err.msg);
	dns_server_stop(s);
	int fds0 = count_dir("/proc/self/fd");
	int th0 = count_threads(-1);

	fail_unless(dns_server_start("127.0.0.1", 0, fake_lookup, &leases, &s,
	    &err) == 0, "start: %s", err.msg);
	port = dns_server_port(s);
	fail_unless(port != 0, "no port");

	if (udp_query(port, "web.vm.", 21, "172.30.0.10") < 0 ||
	    udp_query(port, "DB.vm.", 22, "172.30.0.11") < 0)
		goto fail;

	/* Two pipelined queries on one connection, in one segment. */
	{
		_cleanup_close_ int fd = sock_to(SOCK_STREAM, port);
		fail_unless(fd >= 0, "connect");
		size_t n = frame(buf, "web.vm.", 31);
		n += frame(buf + n, "db.vm.", 32);
		fail_unless(send(fd, buf, n, 0) == (ssize_t)n, "send");
		if (tcp_read_reply(fd, 31, "172.30.0.10") < 0 ||
		    tcp_read_reply(fd, 32, "172.30.0.11") < 0)
			goto fail;
	}
	/* Junk on a stream cannot be skipped: the server hangs up. */
	{
		_cleanup_close_ int fd = sock_to(SOCK_STREAM, port);
		static const uint8_t junk[] = { 0, 5, 1, 2, 3, 4, 5 };
		fail_unless(fd >= 0, "connect");
		fail_unless(send(fd, junk, sizeof(junk), 0) == sizeof(junk), "send");
		fail_unless(recv_ms(fd, buf, sizeof(buf), 2000) == 0, "not closed");
	}
	/* An idle connection is closed after about 2 s. */
	{
		_cleanup_close_ int fd = sock_to(SOCK_STREAM, port);
		fail_unless(fd >= 0, "connect");
		long long t0 = time_mono_ms();
		fail_unless(recv_ms(fd, buf, sizeof(buf), 5000) == 0,
		    "idle connection kept");
		long long dt = time_mono_ms() - t0;
		fail_unless(dt >= 1500 && dt < 3500, "closed after %lld ms", dt);
	}
	/* At most 16 clients: the 17th is closed at once, the others work. */
	{
		int fds[17];
		for (int i = 0; i < 17; i++) {
			fds[i] = sock_to(SOCK_STREAM, port);
			fail_unless(fds[i] >= 0, "connect %d", i);
		}
		ssize_t r = recv_ms(fds[16], buf, sizeof(buf), 1000);
		size_t n = frame(buf, "web.vm.", 41);
		bool sent = send(fds[0], buf, n, 0) == (ssize_t)n;
		int ok = sent ? tcp_read_reply(fds[0], 41, "172.30.0.10") : -1;
		for (int i = 0; i < 17; i++)
			close(fds[i]);
		fail_unless(r == 0, "17th client not closed (%zd)", r);
		fail_unless(ok == 0, "first client not served");
		/* Slots come back once their clients are gone. */
		for (int i = 0; i < 100; i++) {
			_cleanup_close_ int fd = sock_to(SOCK_STREAM, port);
			n = frame(buf, "db.vm.", 42);
			fail_unless(fd >= 0 && send(fd, buf, n, 0) == (ssize_t)n,
			    "send");
			if (recv_ms(fd, buf, 2, 2000) == 2)
				break;
			fail_unless(i < 99, "slots not freed");
			sleep_ms(10);
		}
	}

	/* The port is taken now: a second server says so, with a hint. */
	fail_unless(dns_server_start("127.0.0.1", port, fake_lookup, &leases,
	    &s2, &err) == -1, "second server on the same port");
	fail_unless(err.code == BN_ESYS && err.sys_errno == EADDRINUSE &&
	    err.hint[0], "error: %s (hint '%s')", err.msg, err.hint);

	/* Stopping does not wait out a connected, idle client. */
	{
		_cleanup_close_ int fd = sock_to(SOCK_STREAM, port);
		fail_unless(fd >= 0, "connect");
		sleep_ms(50);   /* let it be accepted */
		long long t0 = time_mono_ms();
		dns_server_stop(s);
		s = NULL;
		long long dt = time_mono_ms() - t0;
		fail_unless(dt < 1000, "stop took %lld ms", dt);
	}
	fail_unless(count_dir("/proc/self/fd") == fds0, "fd leak: %d -> %d",
	    fds0, count_dir("/proc/self/fd"));
	int th = count_threads(th0);
	fail_unless(th == th0, "thread leak: %d -> %d", th0, th);

	/* The same port again right away, TIME_WAIT and all. */
	fail_unless(dns_server_start("127.0.0.1", port, fake_lookup, &leases,
	    &s, &err) == 0, "restart on %u: %s", port, err.msg);
	fail_unless(dns_server_port(s) == port, "port changed");
	if (udp_query(port, "web.vm.", 51, "172.30.0.10") < 0)
		goto fail;
	dns_server_stop(s);
	dns_server_stop(NULL);
	return 0;
fail:
	dns_server_stop(s);
	return -1;
}

struct hammer {
	unsigned port;
	int id;
	int ok;
};

/* Several clients at once, over both transports: run under TSan, this is
 * what shows whether the threads and ldns share anything they should
 * not. */
static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < 25; i++) {
		uint16_t id = (uint16_t)(h->id * 100 + i);
		if (i % 2 == 0) {
			if (udp_query(h->port, "db.vm.", id, "172.30.0.11") < 0)
				return NULL;
		} else {
			uint8_t buf[512];
			_cleanup_close_ int fd = sock_to(SOCK_STREAM, h->port);
			size_t n = frame(buf, "web.vm.", id);
			if (fd < 0 || send(fd, buf, n, 0) != (ssize_t)n ||
			    tcp_read_reply(fd, id, "172.30.0.10") < 0)
				return NULL;
		}
		h->ok++;
	}
	return NULL;
}

static int
test_server_concurrent(void)
{
	struct dns_server *s = NULL;
	struct bn_err err = { 0 };
	struct hammer h[8];
	pthread_t th[8];
	int ok = 0;

	fail_unless(dns_server_start("127.0.0.1", 0, fake_lookup, &leases, &s,
	    &err) == 0, "start: %s", err.msg);
	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){ .port = dns_server_port(s), .id = i };
		if (pthread_create(&th[i], NULL, hammer_main, &h[i]) != 0)
			h[i].id = -1;
	}
	for (int i = 0; i < 8; i++) {
		if (h[i].id < 0)
			continue;
		pthread_join(th[i], NULL);
		ok += h[i].ok;
	}
	dns_server_stop(s);
	fail_unless(ok == 8 * 25, "%d of %d queries answered", ok, 8 * 25);
	return 0;
}

static int
test_server_bad_args(void)
{
	struct dns_server *s = NULL;
	struct bn_err err = { 0 };

	fail_unless(dns_server_start("300.1.2.3", 0, fake_lookup, NULL, &s,
	    &err) == -1 && err.code == BN_EINVAL, "bad address");
	fail_unless(dns_server_start("::1", 0, fake_lookup, NULL, &s,
	    &err) == -1 && err.code == BN_EINVAL, "IPv6");
	fail_unless(dns_server_start("127.0.0.1", 70000, fake_lookup, NULL, &s,
	    &err) == -1 && err.code == BN_EINVAL, "port");
	/* Not an address of this host. */
	fail_unless(dns_server_start("192.0.2.1", 0, fake_lookup, NULL, &s,
	    &err) == -1 && err.sys_errno == EADDRNOTAVAIL && err.hint[0],
	    "foreign address: %s", err.msg);
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_a_hit);
	RUN_TEST(test_case_insensitive);
	RUN_TEST(test_nodata);
	RUN_TEST(test_any_returns_a);
	RUN_TEST(test_unknown_nxdomain);
	RUN_TEST(test_deep_and_odd_names);
	RUN_TEST(test_other_zones_refused);
	RUN_TEST(test_apex);
	RUN_TEST(test_id_and_flags_echoed);
	RUN_TEST(test_garbage_dropped);
	RUN_TEST(test_response_dropped);
	RUN_TEST(test_formerr_and_notimp);
	RUN_TEST(test_edns);
	RUN_TEST(test_reply_size);
	RUN_TEST(test_server);
	RUN_TEST(test_server_concurrent);
	RUN_TEST(test_server_bad_args);
	return tap_end();
}
