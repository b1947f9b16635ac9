// The generated client against a live bangerd. BANGER_SOCKET names the
// daemon's socket (tests/clients/test_typescript.py starts one with the
// Firecracker test double and runs this file with `node --test`).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import {
  ConnectError,
  createBangerClient,
  defaultSocketPath,
  type BangerClient,
  type Schemas,
} from "../src/index.js";

describe("defaultSocketPath", () => {
  test("BANGER_SOCKET wins, even as root", () => {
    const env = { BANGER_SOCKET: "/tmp/x.sock", XDG_RUNTIME_DIR: "/run/user/7" };
    assert.equal(defaultSocketPath({ env, euid: 0, uid: 0 }), "/tmp/x.sock");
    assert.equal(defaultSocketPath({ env, euid: 7, uid: 7 }), "/tmp/x.sock");
  });

  test("root uses /run/banger", () => {
    const env = { BANGER_SOCKET: "", XDG_RUNTIME_DIR: "/run/user/0" };
    assert.equal(defaultSocketPath({ env, euid: 0, uid: 0 }), "/run/banger/bangerd.sock");
  });

  test("a user uses XDG_RUNTIME_DIR, else /run/user/<uid>", () => {
    assert.equal(
      defaultSocketPath({ env: { XDG_RUNTIME_DIR: "/run/user/1000" }, euid: 1000, uid: 1000 }),
      "/run/user/1000/banger/bangerd.sock",
    );
    assert.equal(
      defaultSocketPath({ env: {}, euid: 1000, uid: 1000 }),
      "/run/user/1000/banger/bangerd.sock",
    );
    assert.equal(
      defaultSocketPath({ env: { XDG_RUNTIME_DIR: "/xdg" }, euid: 1001, uid: 1001 }),
      "/xdg/banger/bangerd.sock",
    );
  });
});

describe("createBangerClient against a socket nobody serves", () => {
  test("a request rejects instead of hanging", async () => {
    const client = createBangerClient({ socketPath: "/nonexistent/banger.sock" });
    try {
      await assert.rejects(client.GET("/v1/healthz"));
    } finally {
      await client.close();
    }
  });
});

const socketPath = process.env.BANGER_SOCKET;

describe("VM lifecycle through bangerd", { skip: socketPath ? false : "BANGER_SOCKET is not set" }, () => {
  let banger: BangerClient;
  const name = "ts-" + randomBytes(4).toString("hex");
  const spec = { vcpus: 1, memory_mib: 256, disk_gib: 1, nat: false };

  const findVM = async (): Promise<Schemas["VM"] | undefined> => {
    const { data, error, response } = await banger.GET("/v1/vms");
    assert.equal(response.status, 200);
    assert.equal(error, undefined);
    assert.ok(data);
    return data.vms.find((vm) => vm.name === name);
  };

  before(() => {
    banger = createBangerClient();
    assert.equal(banger.socketPath, socketPath);
  });

  after(async () => {
    await banger.close();
  });

  test("GET /v1 describes API version 1", async () => {
    const { data, response } = await banger.GET("/v1");
    assert.equal(response.status, 200);
    assert.equal(data?.api_version, "1");
    assert.ok(data?.extensions.includes("operations"), JSON.stringify(data));
  });

  test("create answers 202 with an operation, which finishes with the VM", async () => {
    assert.equal(await findVM(), undefined, "VM exists before create");

    const created = await banger.POST("/v1/vms", { body: { name, ...spec } });
    assert.equal(created.response.status, 202);
    assert.equal(created.error, undefined);
    const op = created.data;
    assert.ok(op);
    assert.match(op.id, /^op-[0-9a-f]{16}$/);
    assert.equal(op.kind, "vm.create");
    assert.equal(op.target, name);
    assert.ok(op.state === "pending" || op.state === "running", op.state);
    assert.equal(created.response.headers.get("location"), `/v1/operations/${op.id}`);

    const waited = await banger.GET("/v1/operations/{id}", {
      params: { path: { id: op.id }, query: { wait: 60 } },
    });
    assert.equal(waited.response.status, 200);
    const done = waited.data;
    assert.ok(done);
    assert.equal(done.state, "succeeded", JSON.stringify(done.error));
    assert.equal(done.error, null);
    assert.notEqual(done.finished_at, null);
    const vm = done.result as Schemas["VM"];
    assert.equal(vm.name, name);
    assert.equal(vm.status.state, "running");
  });

  test("list contains the VM with the requested spec", async () => {
    const vm = await findVM();
    assert.ok(vm, `${name} missing from GET /v1/vms`);
    assert.deepEqual(vm.spec, {
      image: "default", ...spec, ports: [], limits: {}, mounts: [],
    });
    assert.equal(vm.status.state, "running");
    assert.equal(vm.status.vmm, "firecracker");
  });

  test("creating the same name again is 409 vm_exists", async () => {
    const again = await banger.POST("/v1/vms", { body: { name } });
    assert.equal(again.response.status, 409);
    assert.equal(again.data, undefined);
    assert.equal(again.error?.code, "vm_exists");
    assert.equal(again.error?.status, 409);
  });

  test("delete with force and wait removes the VM", async () => {
    const deleted = await banger.DELETE("/v1/vms/{name}", {
      params: { path: { name }, query: { force: true, wait: 60 } },
    });
    assert.equal(deleted.response.status, 200);
    const op = deleted.data;
    assert.ok(op);
    assert.equal(op.kind, "vm.delete");
    assert.equal(op.state, "succeeded", JSON.stringify(op.error));
    assert.equal(op.result, null);

    assert.equal(await findVM(), undefined, `${name} still listed after delete`);
  });

  test("a VM that does not exist is 404 vm_not_found with the Error body", async () => {
    const { data, error, response } = await banger.GET("/v1/vms/{name}", {
      params: { path: { name } },
    });
    assert.equal(response.status, 404);
    assert.equal(data, undefined);
    assert.ok(error);
    assert.equal(error.code, "vm_not_found");
    assert.equal(error.status, 404);
    assert.match(error.message, new RegExp(name));
    assert.equal(typeof error.hint, "string");
    assert.deepEqual(typeof error.details, "object");
  });

  test("an invalid body is 400 with a stable code", async () => {
    const { error, response } = await banger.POST("/v1/vms", {
      body: { name: "Not_A_Label" },
    });
    assert.equal(response.status, 400);
    assert.equal(error?.code, "invalid_name");
  });
});

describe("warm starts through bangerd", { skip: socketPath ? false : "BANGER_SOCKET is not set" }, () => {
  let banger: BangerClient;
  const name = "tsw-" + randomBytes(4).toString("hex");
  const clone = name + "-c";
  const hot = name + "-w";

  const wait = async (id: string): Promise<Schemas["Operation"]> => {
    const { data, response } = await banger.GET("/v1/operations/{id}", {
      params: { path: { id }, query: { wait: 60 } },
    });
    assert.equal(response.status, 200);
    assert.ok(data);
    return data;
  };

  before(async () => {
    banger = createBangerClient();
    const created = await banger.POST("/v1/vms", {
      body: { name, vcpus: 1, memory_mib: 128, disk_gib: 1 },
    });
    assert.equal(created.response.status, 202);
    assert.equal((await wait(created.data!.id)).state, "succeeded");
  });

  after(async () => {
    for (const n of [hot, clone, name]) {
      await banger.DELETE("/v1/vms/{name}", {
        params: { path: { name: n }, query: { force: true, wait: 60 } },
      });
    }
    await banger.close();
  });

  test("pause and resume answer with the VM", async () => {
    const paused = await banger.POST("/v1/vms/{name}/pause", { params: { path: { name } } });
    assert.equal(paused.response.status, 200);
    assert.equal(paused.data?.status.state, "paused");
    assert.equal(paused.data?.status.paused_reason, "user");
    const resumed = await banger.POST("/v1/vms/{name}/resume", { params: { path: { name } } });
    assert.equal(resumed.data?.status.state, "running");
  });

  test("a snapshot is an operation whose result is the Snapshot", async () => {
    const taken = await banger.POST("/v1/vms/{name}/snapshots", {
      params: { path: { name } },
      body: { name: "s1" },
    });
    assert.equal(taken.response.status, 202);
    const op = await wait(taken.data!.id);
    assert.equal(op.kind, "vm.snapshot");
    assert.equal(op.state, "succeeded", JSON.stringify(op.error));
    const snap = op.result as Schemas["Snapshot"];
    assert.equal(snap.name, "s1");
    assert.equal(snap.state, "ready");
    assert.equal(snap.vmm.kind, "firecracker");

    const list = await banger.GET("/v1/vms/{name}/snapshots", { params: { path: { name } } });
    assert.deepEqual(list.data?.snapshots.map((s) => s.name), ["s1"]);
    const one = await banger.GET("/v1/vms/{name}/snapshots/{snap}", {
      params: { path: { name, snap: "s1" } },
    });
    assert.equal(one.data?.memory_mib, 128);
  });

  test("restore and clone", async () => {
    const restored = await banger.POST("/v1/vms/{name}/restore", {
      params: { path: { name }, query: { wait: 60 } },
      body: { snapshot: "s1" },
    });
    assert.equal(restored.response.status, 200);
    assert.equal(restored.data?.kind, "vm.restore");
    assert.equal(restored.data?.state, "succeeded", JSON.stringify(restored.data?.error));

    const cloned = await banger.POST("/v1/vms", {
      params: { query: { wait: 60 } },
      body: { name: clone, from: `${name}@s1` },
    });
    assert.equal(cloned.data?.kind, "vm.clone");
    assert.equal(cloned.data?.state, "succeeded", JSON.stringify(cloned.data?.error));
    const vm = cloned.data?.result as Schemas["VM"];
    assert.equal(vm.name, clone);
    assert.equal(vm.status.state, "running");
  });

  test("a warm image starts creates of its shape from its snapshot", async () => {
    const warmed = await banger.POST("/v1/images/{name}/warm", {
      params: { path: { name: "default" }, query: { wait: 60 } },
    });
    assert.equal(warmed.response.status, 200);
    assert.equal(warmed.data?.kind, "image.warm");
    assert.equal(warmed.data?.state, "succeeded", JSON.stringify(warmed.data?.error));
    const img = warmed.data?.result as Schemas["Image"];
    assert.equal(img.warm?.state, "ready");

    const created = await banger.POST("/v1/vms", {
      params: { query: { wait: 60 } },
      body: { name: hot },
    });
    assert.equal(created.data?.kind, "vm.create_warm");
    assert.equal(created.data?.state, "succeeded", JSON.stringify(created.data?.error));
    assert.match(created.data?.note ?? "", /^warm start/);

    const dropped = await banger.DELETE("/v1/images/{name}/warm", {
      params: { path: { name: "default" } },
    });
    assert.equal(dropped.response.status, 204);
    const after = await banger.GET("/v1/images/{name}", { params: { path: { name: "default" } } });
    assert.equal(after.data?.warm, null);
  });

  test("exec streams a command's output and exit as NDJSON", async () => {
    const { data, response } = await banger.POST("/v1/vms/{name}/exec", {
      params: { path: { name } },
      body: { argv: ["sh", "-c", "echo hi; echo oops >&2; exit 3"], timeout_s: 30 },
      parseAs: "text",
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/x-ndjson");
    const events = (data as unknown as string)
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Schemas["ExecEvent"]);
    const text = (t: string) =>
      events
        .filter((e) => e.type === t)
        .map((e) => Buffer.from(e.data ?? "", "base64").toString())
        .join("");
    assert.equal(text("stdout"), "hi\n");
    assert.equal(text("stderr"), "oops\n");
    const last = events[events.length - 1];
    assert.equal(last.type, "exit");
    assert.equal(last.exit_code, 3);
  });

  test("files come out of a VM as a tar stream", async () => {
    const { data, response } = await banger.GET("/v1/vms/{name}/files", {
      params: { path: { name }, query: { path: "/etc/hostname" } },
      parseAs: "arrayBuffer",
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/x-tar");
    const tar = Buffer.from(data as unknown as ArrayBuffer);
    assert.equal(tar.subarray(0, 8).toString(), "hostname");
    assert.equal(tar.subarray(257, 262).toString(), "ustar");
    const missing = await banger.GET("/v1/vms/{name}/files", {
      params: { path: { name }, query: { path: "/no/such/file" } },
    });
    assert.equal(missing.response.status, 404);
    assert.equal(missing.error?.code, "guest_path_not_found");
  });

  test("ports in the spec, and connect streams to a guest port", async () => {
    const echoPort = Number(process.env.BANGER_TEST_ECHO_PORT ?? "0");
    assert.ok(echoPort > 0, "BANGER_TEST_ECHO_PORT is not set");
    const patched = await banger.PATCH("/v1/vms/{name}", {
      params: { path: { name } },
      body: { ports: [{ host: 18555, guest: echoPort }] },
    });
    assert.equal(patched.response.status, 200);
    assert.deepEqual(patched.data?.spec.ports, [
      { host: 18555, guest: echoPort, address: "127.0.0.1" },
    ]);
    const cleared = await banger.PATCH("/v1/vms/{name}", {
      params: { path: { name } },
      body: { ports: [] },
    });
    assert.deepEqual(cleared.data?.spec.ports, []);

    const sock = await banger.connect(name, echoPort);
    const got = await new Promise<string>((resolve, reject) => {
      let text = "";
      sock.on("data", (c: Buffer) => {
        text += c.toString();
        if (text.length >= 11) resolve(text);
      });
      sock.on("error", reject);
      sock.write("hello guest");
    });
    sock.destroy();
    assert.equal(got, "hello guest");
    await assert.rejects(banger.connect(name, echoPort + 1), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.status, 502);
      assert.equal(e.body?.code, "guest_port_unreachable");
      return true;
    });
  });

  test("shared folders: typed in the spec, refused on Firecracker", async () => {
    const mounts = [{ host: process.cwd(), guest: "/mnt/src", readonly: true }];
    const made = await banger.POST("/v1/vms", {
      body: { name: `${name}-mnt`, vcpus: 1, mounts },
    });
    assert.equal(made.response.status, 409);
    assert.equal(made.error?.code, "unsupported_by_vmm");
    assert.match(made.error?.hint ?? "", /vm cp/);
    const bad = await banger.PATCH("/v1/vms/{name}", {
      params: { path: { name } },
      body: { mounts: [{ host: process.cwd(), guest: "/etc" }] },
    });
    assert.equal(bad.response.status, 400);
    assert.equal(bad.error?.code, "invalid_request");
  });

  test("execTty runs a command on a terminal: size, resize, input, signal, exit", async () => {
    const tty = await banger.execTty(
      name,
      ["sh", "-c", "stty size; read x; stty size; echo got:$x; exit 3"],
      { rows: 30, cols: 100, env: { TERM: "vt100" } },
    );
    let text = "";
    const seen = (re: RegExp) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (re.test(text)) {
            tty.output.off("data", onData);
            resolve();
          }
        };
        const onData = (c: Buffer) => {
          text += c.toString();
          check();
        };
        tty.output.on("data", onData);
        check();
      });
    const collect = (c: Buffer) => {
      text += c.toString();
    };
    await seen(/30 100\r\n/);
    tty.output.on("data", collect);
    tty.resize(41, 120);
    tty.write("typed\n");
    const exit = await tty.exit;
    assert.deepEqual(exit, { exitCode: 3, signal: 0, timedOut: false });
    assert.match(text, /41 120\r\n/);
    assert.match(text, /got:typed\r\n/);

    const sleeper = await banger.execTty(name, ["sleep", "307"]);
    setTimeout(() => sleeper.signal("SIGINT"), 200);
    assert.deepEqual(await sleeper.exit, { exitCode: -1, signal: 2, timedOut: false });

    const cat = await banger.execTty(name, ["cat"]);
    cat.output.resume();
    cat.write("line\n");
    cat.end();
    assert.equal((await cat.exit).exitCode, 0);

    await assert.rejects(banger.execTty(name, ["true"], { rows: 0 }), (e: unknown) => {
      assert.ok(e instanceof ConnectError);
      assert.equal(e.status, 400);
      assert.equal(e.body?.code, "invalid_request");
      return true;
    });
  });

  test("usage, host capacity and metrics", async () => {
    const usage = await banger.GET("/v1/vms/{name}/usage", { params: { path: { name } } });
    assert.equal(usage.response.status, 200);
    assert.equal(usage.data?.running, true);
    assert.ok((usage.data?.memory_bytes ?? 0) > 0);
    const host = await banger.GET("/v1/host");
    assert.ok((host.data?.capacity.vcpus ?? 0) >= 1);
    assert.ok((host.data?.allocated.running.vms ?? 0) >= 1);
    const metrics = await banger.GET("/v1/metrics", { parseAs: "text" });
    assert.equal(metrics.response.status, 200);
    assert.match(metrics.data as unknown as string, new RegExp(`^banger_vm_vcpus\\{vm="${name}"\\} \\d+$`, "m"));
  });

  test("a missing snapshot is 404 snapshot_not_found", async () => {
    const { error, response } = await banger.DELETE("/v1/vms/{name}/snapshots/{snap}", {
      params: { path: { name, snap: "nope" } },
    });
    assert.equal(response.status, 404);
    assert.equal(error?.code, "snapshot_not_found");
  });
});
