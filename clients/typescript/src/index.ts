// createBangerClient: an openapi-fetch client for bangerd's REST API that
// talks HTTP over the daemon's Unix socket. The request and response types
// come from schema.ts, which openapi-typescript generates from openapi.yaml
// (`make sdk`); do not edit that file by hand.
import { request as httpRequest } from "node:http";
import type { Duplex } from "node:stream";
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
};

/** bangerd's refusal of a connect: its HTTP status and error body. */
export class ConnectError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError | undefined,
  ) {
    super(body?.message ?? `bangerd answered HTTP ${status}`);
    this.name = "ConnectError";
  }
}

function connectVia(socketPath: string, name: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      socketPath,
      method: "POST",
      path: `/v1/vms/${encodeURIComponent(name)}/connect?port=${port}`,
      headers: { Connection: "Upgrade", Upgrade: "tcp", "Content-Length": "0" },
    });
    req.on("upgrade", (_res, socket, head) => {
      // Bytes the service sent with the 101 come first.
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let body: ApiError | undefined;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString()) as ApiError;
        } catch {
          body = undefined;
        }
        reject(new ConnectError(res.statusCode ?? 0, body));
      });
    });
    req.on("error", reject);
    req.end();
  });
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
  });
}
