// createBangerClient: an openapi-fetch client for bangerd's REST API that
// talks HTTP over the daemon's Unix socket. The request and response types
// come from schema.ts, which openapi-typescript generates from openapi.yaml
// (`make sdk`); do not edit that file by hand.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { constants as osConstants } from "node:os";
import { PassThrough, type Duplex, type Readable } from "node:stream";
import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import { Agent, fetch as undiciFetch, Request as UndiciRequest } from "undici";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** The schemas of openapi.yaml, for example `Schemas["VM"]`. */
export type Schemas = components["schemas"];
/** The body of every 4xx and 5xx reply. */
export type ApiError = Schemas["Error"];

/** The openapi-fetch client, plus the socket it uses and a way to close it. */
export type BangerClient = Client<paths> & {
  /** The Unix socket this client connects to. */
  readonly socketPath: string;
  /** Close the idle connections so the process can exit. */
  close(): Promise<void>;
  /**
   * A raw TCP stream to `port` on the VM's own loopback, carried by its
   * guest agent over vsock (`POST /v1/vms/{name}/connect` upgraded to
   * `tcp`). Rejects with a {@link ConnectError} when bangerd refuses.
   */
  connect(name: string, port: number): Promise<Duplex>;
  /**
   * `argv` on a pseudo-terminal in the VM (`POST /v1/vms/{name}/exec` with
   * `"tty": true`, upgraded), as `banger vm exec -it` runs it. Resolves once
   * the session is open; rejects with a {@link ConnectError} when bangerd
   * refuses.
   */
  execTty(name: string, argv: string[], opts?: ExecTtyOptions): Promise<TtySession>;
};

/** What {@link BangerClient.execTty} takes besides the command. */
export interface ExecTtyOptions {
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  timeoutS?: number;
  /** The terminal's first size (default 24 x 80). */
  rows?: number;
  cols?: number;
}

/** How the command ended (its exit frame). */
export interface ExecExit {
  /** Its status; -1 when a signal ended it. */
  exitCode: number;
  /** The signal that ended it, 0 for none. */
  signal: number;
  /** Whether `timeoutS` ended it. */
  timedOut: boolean;
}

/** An open terminal session; the frames are openapi.yaml's (exec route). */
export interface TtySession {
  /** The terminal's output (stdout and stderr together), as it comes. */
  readonly output: Readable;
  /** Resolves with the exit; rejects when the stream ends without one. */
  readonly exit: Promise<ExecExit>;
  /** Input, as if typed ("\x03" is a Ctrl-C there). */
  write(data: string | Uint8Array): void;
  /** The window's new size: the command gets SIGWINCH. */
  resize(rows: number, cols: number): void;
  /** A signal for the terminal's foreground process group (INT, QUIT,
   * TERM, HUP, KILL or WINCH; the agent ignores others). */
  signal(sig: NodeJS.Signals | number): void;
  /** The end of input (the terminal's EOF character). */
  end(): void;
  /** Hang up: the session's processes get SIGHUP, then SIGKILL. */
  close(): void;
}

/** bangerd's refusal of a connect or an execTty: its HTTP status and error body. */
export class ConnectError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError | undefined,
  ) {
    super(body?.message ?? `bangerd answered HTTP ${status}`);
    this.name = "ConnectError";
  }
}

/** POST path upgraded to `tcp`: the stream after the 101, or a ConnectError. */
function upgradeVia(socketPath: string, path: string, body?: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      Connection: "Upgrade",
      Upgrade: "tcp",
      "Content-Length": String(body === undefined ? 0 : Buffer.byteLength(body)),
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const req: ClientRequest = httpRequest({ socketPath, method: "POST", path, headers });
    req.on("upgrade", (_res, socket, head) => {
      // Bytes sent with the 101 come first.
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let err: ApiError | undefined;
        try {
          err = JSON.parse(Buffer.concat(chunks).toString()) as ApiError;
        } catch {
          err = undefined;
        }
        reject(new ConnectError(res.statusCode ?? 0, err));
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

function connectVia(socketPath: string, name: string, port: number): Promise<Duplex> {
  return upgradeVia(socketPath, `/v1/vms/${encodeURIComponent(name)}/connect?port=${port}`);
}

// The session's frame types (openapi.yaml, POST /v1/vms/{name}/exec).
const FRAME = { input: 0, output: 1, exit: 3, resize: 4, signal: 5, eof: 6 } as const;

function frame(type: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

async function execTtyVia(
  socketPath: string,
  name: string,
  argv: string[],
  opts: ExecTtyOptions = {},
): Promise<TtySession> {
  const body = JSON.stringify({
    argv,
    tty: true,
    env: opts.env,
    cwd: opts.cwd,
    user: opts.user,
    timeout_s: opts.timeoutS,
    rows: opts.rows,
    cols: opts.cols,
  });
  const sock = await upgradeVia(socketPath, `/v1/vms/${encodeURIComponent(name)}/exec`, body);
  const output = new PassThrough();
  let pending = Buffer.alloc(0);
  let exited: ExecExit | undefined;
  let settle: { resolve: (e: ExecExit) => void; reject: (e: Error) => void };
  const exit = new Promise<ExecExit>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // A caller that only awaits output must not see an unhandled rejection.
  exit.catch(() => undefined);
  sock.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (exited === undefined && pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      const type = pending[0];
      const payload = pending.subarray(8, 8 + len);
      pending = pending.subarray(8 + len);
      if (type === FRAME.output) {
        output.write(Buffer.from(payload));
      } else if (type === FRAME.exit) {
        const f = Object.fromEntries(
          payload.toString().split("\n").filter(Boolean).map((l) => l.split("=", 2)),
        ) as Record<string, string>;
        exited = {
          exitCode: Number(f.exit_code ?? -1),
          signal: Number(f.signal ?? 0),
          timedOut: f.timed_out === "1",
        };
        output.end();
        settle.resolve(exited);
      } else {
        sock.destroy(new Error(`bangerd sent a frame of type ${type}`));
      }
    }
  });
  const ended = (err?: Error) => {
    if (exited !== undefined) return;
    output.end();
    settle.reject(err ?? new Error("the session ended before the command's exit"));
  };
  sock.on("error", ended);
  sock.on("close", () => ended());
  const send = (buf: Buffer) => {
    if (!sock.destroyed) sock.write(buf);
  };
  return {
    output,
    exit,
    write: (data) => send(frame(FRAME.input, typeof data === "string" ? Buffer.from(data) : data)),
    resize: (rows, cols) => {
      const p = Buffer.alloc(4);
      p.writeUInt16BE(rows, 0);
      p.writeUInt16BE(cols, 2);
      send(frame(FRAME.resize, p));
    },
    signal: (sig) => {
      const n = typeof sig === "number" ? sig : osConstants.signals[sig];
      send(frame(FRAME.signal, Uint8Array.of(n)));
    },
    end: () => send(frame(FRAME.eof)),
    close: () => sock.destroy(),
  };
}

export interface BangerClientOptions
  extends Omit<ClientOptions, "baseUrl" | "fetch" | "Request"> {
  /** bangerd's API socket; defaults to {@link defaultSocketPath}(). */
  socketPath?: string;
}

/** Inputs of {@link defaultSocketPath}; each defaults to this process's. */
export interface SocketPathContext {
  env?: Record<string, string | undefined>;
  euid?: number;
  uid?: number;
}

/**
 * The socket the `banger` CLI would use: `$BANGER_SOCKET`, else
 * `/run/banger/bangerd.sock` when running as root, else
 * `$XDG_RUNTIME_DIR/banger/bangerd.sock` (or `/run/user/<uid>/...` when
 * XDG_RUNTIME_DIR is unset).
 */
export function defaultSocketPath(ctx: SocketPathContext = {}): string {
  const env = ctx.env ?? process.env;
  const euid = ctx.euid ?? process.geteuid?.() ?? -1;
  const uid = ctx.uid ?? process.getuid?.() ?? -1;

  if (env.BANGER_SOCKET) return env.BANGER_SOCKET;
  if (euid === 0) return "/run/banger/bangerd.sock";
  if (env.XDG_RUNTIME_DIR) return `${env.XDG_RUNTIME_DIR}/banger/bangerd.sock`;
  return `/run/user/${uid}/banger/bangerd.sock`;
}

// The host part of the URL is ignored by bangerd; openapi.yaml's server URL
// uses the same placeholder.
const BASE_URL = "http://localhost";

/**
 * A typed client for bangerd's API. Paths, parameters, bodies and replies
 * are checked against openapi.yaml at compile time:
 *
 *   const banger = createBangerClient();
 *   const { data, error } = await banger.GET("/v1/vms");
 */
export function createBangerClient(opts: BangerClientOptions = {}): BangerClient {
  const { socketPath = defaultSocketPath(), ...rest } = opts;
  const agent = new Agent({ connect: { socketPath } });

  // undici's own fetch and Request, so the dispatcher is honoured the same
  // way on every Node.js version (Node's built-in fetch bundles a different
  // undici release).
  const fetchViaSocket = (req: Request): Promise<Response> =>
    undiciFetch(req as unknown as UndiciRequest, {
      dispatcher: agent,
    }) as unknown as Promise<Response>;

  const client = createClient<paths>({
    ...rest,
    baseUrl: BASE_URL,
    fetch: fetchViaSocket,
    Request: UndiciRequest as unknown as typeof Request,
  });
  return Object.assign(client, {
    socketPath,
    close: () => agent.close(),
    connect: (name: string, port: number) => connectVia(socketPath, name, port),
    execTty: (name: string, argv: string[], opts?: ExecTtyOptions) =>
      execTtyVia(socketPath, name, argv, opts),
  });
}
