/* Router, error map, names, paths, guest cmdline, config and bundle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/util.h"
#include "core/config.h"
#include "guest/guest.h"
#include "tap.h"

static int
test_routes(void)
{
	char param[256], allow[128];
	bool matched;
	const struct api_route *r;

	r = api_route_match("GET", "/v1/vms/web", param, sizeof(param), &matched,
	    allow, sizeof(allow));
	fail_unless(r && strcmp(r->pattern, "/v1/vms/{name}") == 0, "get vm");
	fail_unless(strcmp(param, "web") == 0, "param %s", param);
	r = api_route_match("POST", "/v1/vms/web/start", param, sizeof(param),
	    &matched, allow, sizeof(allow));
	fail_unless(r && strcmp(r->pattern, "/v1/vms/{name}/start") == 0, "start");
	r = api_route_match("DELETE", "/v1/vms/web/snapshots/s1", param,
	    sizeof(param), &matched, allow, sizeof(allow));
	fail_unless(r && strcmp(r->pattern, "/v1/vms/{name}/snapshots/{snap}") == 0,
	    "two parameters");
	fail_unless(strcmp(param, "web/s1") == 0, "joined with '/': %s", param);
	r = api_route_match("POST", "/v1/vms/actions", param, sizeof(param),
	    &matched, allow, sizeof(allow));
	fail_unless(r && strcmp(r->pattern, "/v1/vms/actions") == 0, "bulk literal");
	r = api_route_match("PUT", "/v1/vms", param, sizeof(param), &matched,
	    allow, sizeof(allow));
	fail_unless(r == NULL && matched, "405");
	fail_unless(strstr(allow, "GET") && strstr(allow, "POST"), "allow %s", allow);
	r = api_route_match("GET", "/v1/vms/", param, sizeof(param), &matched,
	    allow, sizeof(allow));
	fail_unless(r == NULL && !matched, "empty segment is 404");
	r = api_route_match("GET", "/v1/vms/a/b/c", param, sizeof(param), &matched,
	    allow, sizeof(allow));
	fail_unless(r == NULL && !matched, "too deep");
	r = api_route_match("GET", "/v1x", param, sizeof(param), &matched, allow,
	    sizeof(allow));
	fail_unless(r == NULL, "prefix only");
	return 0;
}

static int
test_error_map(void)
{
	int n;
	const struct bn_code_info *t = bn_code_table(&n);

	fail_unless(n == BN_CODE_MAX, "one row per code");
	for (int i = 0; i < n; i++) {
		fail_unless(t[i].code == (enum bn_code)i, "row %d in order", i);
		fail_unless(i == 0 || (t[i].http_status >= 400 && t[i].http_status < 600),
		    "%s status %d", t[i].name, t[i].http_status);
		for (int j = 0; j < i; j++)
			fail_unless(strcmp(t[i].name, t[j].name) != 0, "dup %s", t[i].name);
	}
	fail_unless(bn_code_info(BN_EVM_NOTFOUND)->http_status == 404, "404");
	fail_unless(bn_code_info(BN_ETOOBIG)->http_status == 413, "413");
	fail_unless(strcmp(bn_code_info(BN_EUNKNOWN_FIELD)->name, "unknown_field") == 0,
	    "unknown_field");
	fail_unless(bn_code_by_name("vm_exists")->code == BN_EVM_EXISTS, "by name");
	fail_unless(bn_code_by_name("nope") == NULL, "unknown");

	struct bn_err err;
	bn_fail(&err, BN_EVM_NOTFOUND, 0, "vm '%s' not found", "a\nb");
	json_t *j = err_to_json(&err);
	fail_unless(strcmp(json_string_value(json_object_get(j, "message")),
	    "vm 'a b' not found") == 0, "control chars stripped");
	fail_unless(json_integer_value(json_object_get(j, "status")) == 404, "status");
	fail_unless(json_is_object(json_object_get(j, "details")), "details object");
	json_decref(j);
	bn_fail(&err, BN_ESYS, 2, "open %s", "/x");
	fail_unless(strstr(err.msg, "No such file") != NULL, "errno text: %s", err.msg);
	bn_err_prefix(&err, "vm '%s'", "web");
	fail_unless(strncmp(err.msg, "vm 'web': open /x", 17) == 0, "prefix %s", err.msg);
	return 0;
}

static int
test_names_and_paths(void)
{
	const char *good[] = { "a", "web", "dev-1", "0", "a-b-c",
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123" };
	const char *bad[] = { "", "-a", "a-", "A", "a b", "../x", "a_b", "a.b", "wéb",
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234" };
	struct bn_err err;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		fail_unless(name_valid(good[i]), "good %s", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		fail_unless(!name_valid(bad[i]), "bad %s", bad[i]);
	fail_unless(name_check("vm", "a b", &err) < 0 && err.code == BN_ENAME, "code");
	fail_unless(path_check_abs("rootfs", "/a/b.ext4", &err) == 0, "abs ok");
	fail_unless(path_check_abs("rootfs", "a/b", &err) < 0 && err.code == BN_EPATH,
	    "relative");
	fail_unless(path_check_abs("rootfs", "/a/../b", &err) < 0, "dotdot");
	fail_unless(path_check_abs("rootfs", "/a/..b", &err) == 0, "..b is a name");
	fail_unless(path_check_abs("rootfs", "/a/\x01", &err) < 0, "control");
	return 0;
}

static int
test_guest_cmdline(void)
{
	char out[512];
	struct bn_err err;
	struct guest_config gc = { .hostname = "web", .agent_port = 1024 };

	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) == 0, "%s", err.msg);
	fail_unless(strstr(out, "console=ttyS0") && strstr(out, "root=/dev/vda rw"),
	    "%s", out);
	fail_unless(strstr(out, "banger.agent_port=1024") && !strstr(out, " ip="), "%s",
	    out);
	gc.vmm_adds_root = true;
	gc.ip = "172.30.0.2";
	gc.gateway = "172.30.0.1";
	gc.netmask = "255.255.255.0";
	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) == 0, "%s", err.msg);
	fail_unless(!strstr(out, "root=/dev/vda"), "firecracker adds root: %s", out);
	fail_unless(strstr(out, "ip=172.30.0.2::172.30.0.1:255.255.255.0:web:eth0:off"),
	    "%s", out);
	gc.dns = "172.30.0.1";
	gc.dns2 = "192.0.2.53";
	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) == 0, "%s", err.msg);
	fail_unless(strstr(out, "web:eth0:off:172.30.0.1:192.0.2.53 "), "%s", out);
	gc.dns2 = "8.8.8.8; rm";
	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) < 0, "dns2 checked");
	gc.dns = gc.dns2 = NULL;
	gc.ip = "172.30.0.2 init=/bin/sh";
	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) < 0, "injection refused");
	gc.ip = NULL;
	gc.hostname = "bad name";
	fail_unless(guest_cmdline(&gc, out, sizeof(out), &err) < 0, "bad hostname");
	fail_unless(guest_cmdline(&(struct guest_config){ .hostname = "x",
	    .agent_port = 1 }, out, 20, &err) < 0, "too small buffer");
	return 0;
}

/* Shared folders: the syntax shared by bangerd and the CLI, the store's
 * text, and the kernel command line words. */
static int
test_mountspec(void)
{
	const char *good_guest[] = { "/mnt/src", "/root/proj", "/srv/a-b/c.d_e",
		"/opt", "/usr/local/src", "/home/me" };
	const char *bad_guest[] = { "", "mnt", "/", "/mnt/", "/mnt//a", "/mnt/./a",
		"/mnt/../etc", "/mnt/a b", "/mnt/a:b", "/etc", "/usr", "/root",
		"/tmp", "/proc/x", "/sys", "/dev/shm", "/run/user",
		"/usr/local/lib/banger/x", "/mnt/caf\xc3\xa9" };
	struct vm_mount m, two[2];
	const char *why;
	char buf[256], cmd[2048];
	int at;

	for (size_t i = 0; i < sizeof(good_guest) / sizeof(*good_guest); i++)
		fail_unless(mount_guest_why(good_guest[i]) == NULL, "%s: %s",
		    good_guest[i], mount_guest_why(good_guest[i]));
	for (size_t i = 0; i < sizeof(bad_guest) / sizeof(*bad_guest); i++)
		fail_unless(mount_guest_why(bad_guest[i]) != NULL, "%s accepted",
		    bad_guest[i]);
	memset(buf, 'a', 140);
	buf[0] = '/';
	buf[140] = '\0';
	fail_unless(mount_guest_why(buf) != NULL, "long guest path accepted");
	fail_unless(mount_host_why("rel/dir") && mount_host_why("/a\nb") &&
	    !mount_host_why("/srv/a,b:c"), "host syntax");

	fail_unless(mount_parse("/srv/x:/mnt/x", &m, &why) == 0 && !m.readonly &&
	    strcmp(m.host, "/srv/x") == 0 && strcmp(m.guest, "/mnt/x") == 0,
	    "plain");
	fail_unless(mount_parse("/srv/a:b:/mnt/x:ro", &m, &why) == 0 &&
	    m.readonly && strcmp(m.host, "/srv/a:b") == 0, "colon in host");
	fail_unless(mount_parse("/srv/x:/mnt/x:rw", &m, &why) == 0 && !m.readonly,
	    "rw");
	fail_unless(mount_parse("/srv/x", &m, &why) < 0 &&
	    mount_parse(":/mnt/x", &m, &why) < 0 &&
	    mount_parse("/srv/x:/etc", &m, &why) < 0 &&
	    mount_parse("/srv/x:ro", &m, &why) < 0 &&
	    mount_parse("x:/mnt/x", &m, &why) < 0, "bad specs accepted");

	fail_unless(mount_parse("/a:/mnt/a", &two[0], &why) == 0 &&
	    mount_parse("/b:/mnt/a/b", &two[1], &why) == 0, "parse two");
	fail_unless(mounts_check(two, 2, &at, buf, sizeof(buf), &why) < 0 &&
	    at == 1 && strstr(why, "overlap"), "nested guest paths accepted");
	snprintf(two[1].guest, sizeof(two[1].guest), "/mnt/ab");
	fail_unless(mounts_check(two, 2, &at, buf, sizeof(buf), &why) == 0,
	    "/mnt/ab is not inside /mnt/a: %s", why);

	char *text = mounts_encode(two, 2);
	struct vm_mount back[VM_MOUNTS_MAX];
	fail_unless(mounts_decode(text, back, VM_MOUNTS_MAX) == 2 &&
	    strcmp(back[1].guest, "/mnt/ab") == 0, "round trip %s", text);
	free(text);
	fail_unless(mounts_decode("", back, 8) == 0 &&
	    mounts_decode("not json", back, 8) == 0 &&
	    mounts_decode("[{\"host\": \"/a\", \"guest\": \"/etc\"}]", back,
	    8) == 0, "bad store text");

	two[0].readonly = true;
	struct guest_config gc = { .hostname = "web", .agent_port = 1024,
		.mounts = two, .nmounts = 2 };
	struct bn_err err;
	fail_unless(guest_cmdline(&gc, cmd, sizeof(cmd), &err) == 0, "%s",
	    err.msg);
	fail_unless(strstr(cmd, " banger.mount=banger0:/mnt/a:ro") &&
	    strstr(cmd, " banger.mount=banger1:/mnt/ab") &&
	    !strstr(cmd, "/mnt/ab:ro"), "%s", cmd);
	snprintf(two[1].guest, sizeof(two[1].guest), "/mnt/x init=/bin/sh");
	fail_unless(guest_cmdline(&gc, cmd, sizeof(cmd), &err) < 0,
	    "injection through a guest path");
	return 0;
}

static int
test_config_parse(void)
{
	struct config cfg;
	struct bn_err err;
	const char *legacy = "{\"ping_port\": 2000, \"ping_helper\": \"/opt/agent\"}";
	const char *both = "{\"ping_port\": 2000, \"agent_port\": 3000}";

	config_defaults(&cfg);
	fail_unless(cfg.agent_port == 1024 && strcmp(cfg.vmm, "auto") == 0, "defaults");
	fail_unless(config_parse(&cfg, legacy, strlen(legacy), &err) == 0, "%s", err.msg);
	fail_unless(cfg.agent_port == 2000 && strcmp(cfg.agent, "/opt/agent") == 0,
	    "legacy keys map");
	fail_unless(cfg.legacy.n == 2, "legacy noted: %d", cfg.legacy.n);
	config_defaults(&cfg);
	fail_unless(config_parse(&cfg, both, strlen(both), &err) == 0, "%s", err.msg);
	fail_unless(cfg.agent_port == 3000, "new key wins: %d", cfg.agent_port);
	const char *bad[] = { "{\"nope\": 1}", "{\"agent_port\": \"x\"}",
		"{\"vmm\": \"xen\"}", "{\"stop_grace_s\": -1}", "[1]", "{bad" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		config_defaults(&cfg);
		fail_unless(config_parse(&cfg, bad[i], strlen(bad[i]), &err) < 0,
		    "refused %s", bad[i]);
	}
	return 0;
}

static int
test_bundle_parse(void)
{
	struct bundle b;
	struct bn_err err;
	const char *legacy = "{\"ping_helper\": \"agent-old\", \"ping_port\": 52, "
	    "\"kernel\": \"/abs/vmlinux\", \"vmm\": \"qemu\"}";

	memset(&b, 0, sizeof(b));
	b.agent_port = 1024;
	fail_unless(bundle_parse(&b, "/rt", legacy, strlen(legacy), &err) == 0, "%s",
	    err.msg);
	fail_unless(strcmp(b.agent, "/rt/agent-old") == 0, "agent %s", b.agent);
	fail_unless(b.agent_port == 52, "port %d", b.agent_port);
	fail_unless(strcmp(b.kernel, "/abs/vmlinux") == 0, "abs kept");
	fail_unless(strcmp(b.rootfs, "/rt/rootfs-docker.ext4") == 0, "default part");
	fail_unless(strcmp(b.vmm, "qemu") == 0 && b.legacy.n == 2, "vmm, legacy");
	const char *bad[] = { "{\"kernel\": 5}", "{\"whatever\": \"x\"}",
		"{\"vmm\": \"bhyve\"}", "{\"agent_port\": 0}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&b, 0, sizeof(b));
		fail_unless(bundle_parse(&b, "/rt", bad[i], strlen(bad[i]), &err) < 0,
		    "refused %s", bad[i]);
	}
	return 0;
}

int
main(void)
{
	tap_begin();
	RUN_TEST(test_routes);
	RUN_TEST(test_error_map);
	RUN_TEST(test_names_and_paths);
	RUN_TEST(test_guest_cmdline);
	RUN_TEST(test_mountspec);
	RUN_TEST(test_config_parse);
	RUN_TEST(test_bundle_parse);
	return tap_end();
}
