/* firecracker.c - the Firecracker driver: process + REST API over its
 * Unix socket (libcurl).  Call order follows Firecracker's API: every
 * pre-boot PUT, then InstanceStart. */
#include "vmm.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/proc.h"
#include "common/util.h"

struct fc_buf {
	char data[4096];
	size_t len;
};

static size_t
fc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct fc_buf *b = userdata;
	size_t n = size * nmemb, take = n;

	if (b->len + take >= sizeof(b->data))
		take = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, ptr, take);
	b->len += take;
	b->data[b->len] = '\0';
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_key_t curl_key;
static _Atomic bool curl_ready;

static void
curl_handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void
curl_init_once(void)
{
	/* Deferred to the first VMM call: OpenSSL's initialisation costs
	 * megabytes that an idle daemon does not need. */
	curl_global_init(CURL_GLOBAL_NOTHING);
	pthread_key_create(&curl_key, curl_handle_free);
	curl_ready = true;
}

/* One easy handle per thread, reset between calls: an operation's calls
 * to one Firecracker reuse the connection (keep-alive). */
static CURL *
curl_handle(void)
{
	CURL *c;

	pthread_once(&curl_once, curl_init_once);
	c = pthread_getspecific(curl_key);
	if (c != NULL) {
		curl_easy_reset(c);
		return c;
	}
	c = curl_easy_init();
	if (c != NULL)
		pthread_setspecific(curl_key, c);
	return c;
}

void
vmm_thread_done(void)
{
	CURL *c;

	if (!curl_ready)
		return;
	if ((c = pthread_getspecific(curl_key)) != NULL) {
		pthread_setspecific(curl_key, NULL);
		curl_easy_cleanup(c);
	}
}

/* One API call.  Returns 0 on 2xx; a 4xx carries Firecracker's
 * fault_message into err (BN_EVMM).  *ret_connect_failed tells the
 * readiness loop that nothing listens yet. */
static int
fc_call(const struct vmm_params *p, const char *method, const char *path,
    json_t *body, int timeout_ms, struct fc_buf *resp, bool *ret_connect_failed,
    struct bn_err *err)
{
	char url[256], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct fc_buf local = { .len = 0 };
	char *text = NULL;
	long code = 0;
	CURLcode cc;
	CURL *c;
	int rc = 0;

	if (resp == NULL)
		resp = &local;
	resp->len = 0;
	resp->data[0] = '\0';
	if (ret_connect_failed)
		*ret_connect_failed = false;
	c = curl_handle();
	if (c == NULL)
		return bn_fail(err, BN_EINTERNAL, 0, "curl_easy_init failed");
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, p->api_sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fc_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body != NULL) {
		text = json_dump_compact(body);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		if (ret_connect_failed && cc == CURLE_COULDNT_CONNECT)
			*ret_connect_failed = true;
		rc = bn_fail(err, cc == CURLE_OPERATION_TIMEDOUT ? BN_ETIMEOUT : BN_EVMM,
		    0, "firecracker %s %s: %s", method, path,
		    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		bn_err_detail(err, "call", path);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code >= 300) {
		json_t *j = json_loads(resp->data, 0, NULL);
		const char *fm = j ? json_get_str(j, "fault_message") : NULL;
		char call[64];
		rc = bn_fail(err, BN_EVMM, 0, "firecracker refused %s %s (HTTP %ld): %s",
		    method, path, code, fm ? fm : resp->data);
		snprintf(call, sizeof(call), "%s %s", method, path);
		bn_err_detail(err, "call", call);
		json_decref(j);
	}
out:
	curl_slist_free_all(hdrs);
	free(text);
	return rc;
}

static void
fc_unlink_sockets(const struct vmm_params *p)
{
	/* Firecracker leaves both sockets behind when it exits. */
	unlink(p->api_sock);
	unlink(p->vsock_uds);
}

static int
fc_spawn(const struct vmm_params *p, pid_t *ret_pid, struct bn_err *err)
{
	char *argv[] = {
		(char *)p->binary, "--api-sock", (char *)p->api_sock,
		"--id", (char *)p->vm_id, NULL
	};

	fc_unlink_sockets(p);
	if (proc_spawn_detached(argv, p->console_log, ret_pid, err) < 0) {
		if (err->code == BN_EVMM_MISSING)
			bn_err_hint(err, "install Firecracker or set \"firecracker\" "
			    "in bundle.json (or BANGER_FIRECRACKER)");
		return bn_err_prefix(err, "spawn firecracker");
	}
	return 0;
}

/* The socket file appears at bind(), before listen(): poll by connecting
 * and asking GET / until it answers, the process dies, or time runs out. */
static int
fc_wait_ready(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	long long deadline = time_mono_ms() + p->api_timeout_ms;
	struct bn_err last = { 0 };
	int attempt = 0;

	for (;;) {
		bool refused = false;
		if (fc_call(p, "GET", "/", NULL, 500, NULL, &refused, &last) == 0)
			return 0;
		if (!proc_alive(pid)) {
			bn_fail(err, BN_EVMM, 0, "firecracker exited before its API "
			    "was ready");
			return bn_err_hint(err, "see %s", p->console_log);
		}
		if (!refused && last.code != BN_EVMM) {
			*err = last;
			return -1;
		}
		if (time_mono_ms() >= deadline) {
			bn_fail(err, BN_ETIMEOUT, 0, "firecracker API not ready after "
			    "%d ms: %s", p->api_timeout_ms, last.msg);
			return bn_err_hint(err, "see %s", p->console_log);
		}
		/* 1, 2, 4, 8, then every 10 ms: Firecracker usually listens
		 * within a few milliseconds of exec. */
		sleep_ms(attempt < 4 ? 1 << attempt : 10);
		attempt++;
	}
}

static int
fc_put(const struct vmm_params *p, const char *path, json_t *body,
    struct bn_err *err)
{
	int rc = fc_call(p, "PUT", path, body, p->api_timeout_ms, NULL, NULL, err);

	json_decref(body);
	return rc;
}

static int
fc_configure(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	json_t *boot;

	if (fc_wait_ready(p, pid, err) < 0)
		return -1;
	if (fc_put(p, "/logger", json_pack("{s:s, s:s, s:b, s:b}",
	    "log_path", p->vmm_log, "level", "Info", "show_level", 1,
	    "show_log_origin", 0), err) < 0)
		return -1;
	if (fc_put(p, "/machine-config", json_pack("{s:i, s:i, s:b}",
	    "vcpu_count", p->vcpus, "mem_size_mib", p->memory_mib, "smt", 0), err) < 0)
		return -1;
	boot = json_pack("{s:s, s:s}", "kernel_image_path", p->kernel,
	    "boot_args", p->cmdline);
	if (p->initrd && *p->initrd)
		json_object_set_new(boot, "initrd_path", json_string(p->initrd));
	if (fc_put(p, "/boot-source", boot, err) < 0)
		return -1;
	if (fc_put(p, "/drives/rootfs", json_pack("{s:s, s:s, s:b, s:b}",
	    "drive_id", "rootfs", "path_on_host", p->rootfs, "is_root_device", 1,
	    "is_read_only", 0), err) < 0)
		return -1;
	if (fc_put(p, "/drives/work", json_pack("{s:s, s:s, s:b, s:b}",
	    "drive_id", "work", "path_on_host", p->workdisk, "is_root_device", 0,
	    "is_read_only", 0), err) < 0)
		return -1;
	if (p->tap != NULL && fc_put(p, "/network-interfaces/eth0",
	    json_pack("{s:s, s:s, s:s}", "iface_id", "eth0", "host_dev_name", p->tap,
	    "guest_mac", p->mac), err) < 0)
		return -1;
	/* Firecracker binds uds_path while handling this call. */
	unlink(p->vsock_uds);
	return fc_put(p, "/vsock", json_pack("{s:i, s:s}", "guest_cid", (int)p->cid,
	    "uds_path", p->vsock_uds), err);
}

static int
fc_start(const struct vmm_params *p, struct bn_err *err)
{
	return fc_put(p, "/actions", json_pack("{s:s}", "action_type",
	    "InstanceStart"), err);
}

static void
fc_kill(const struct vmm_params *p, pid_t pid)
{
	if (pid > 0 && proc_alive(pid)) {
		kill(pid, SIGKILL);
		proc_wait_gone(pid, 2000);
	}
	fc_unlink_sockets(p);
}

static int
fc_stop(const struct vmm_params *p, pid_t pid, int grace_ms, struct bn_err *err)
{
	struct bn_err ignored;

	if (pid <= 0 || !proc_alive(pid)) {
		fc_unlink_sockets(p);
		return 0;
	}
	/* Ctrl-Alt-Del lets the guest shut down; Firecracker exits on the
	 * resulting reset.  A guest that ignores it gets SIGTERM, then KILL. */
	if (grace_ms > 0 && fc_put(p, "/actions", json_pack("{s:s}", "action_type",
	    "SendCtrlAltDel"), &ignored) == 0 && proc_wait_gone(pid, grace_ms))
		goto done;
	kill(pid, SIGTERM);
	if (proc_wait_gone(pid, 2000))
		goto done;
	kill(pid, SIGKILL);
	if (!proc_wait_gone(pid, 5000))
		return bn_fail(err, BN_ESYS, 0, "firecracker pid %d did not exit "
		    "after SIGKILL", (int)pid);
done:
	fc_unlink_sockets(p);
	return 0;
}

static int
fc_probe(const struct vmm_params *p, pid_t pid, struct bn_err *err)
{
	const char *needles[] = { "--id", p->vm_id, "--api-sock", p->api_sock };
	struct fc_buf resp;
	json_t *j;
	int rc;

	if (!proc_alive(pid))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not running", (int)pid);
	if (!proc_cmdline_has(pid, needles, 4))
		return bn_fail(err, BN_ESTATE, 0, "pid %d is not this vm's "
		    "firecracker", (int)pid);
	if (fc_call(p, "GET", "/", NULL, 1000, &resp, NULL, err) < 0)
		return -1;
	j = json_loads(resp.data, 0, NULL);
	rc = j && json_get_str(j, "id") && strcmp(json_get_str(j, "id"), p->vm_id) == 0 ?
	    0 : bn_fail(err, BN_ESTATE, 0, "firecracker at %s reports another id",
	    p->api_sock);
	json_decref(j);
	return rc;
}

const struct vmm_driver vmm_firecracker = {
	.name = "firecracker",
	.spawn = fc_spawn,
	.configure = fc_configure,
	.start = fc_start,
	.stop = fc_stop,
	.kill = fc_kill,
	.probe = fc_probe,
};
