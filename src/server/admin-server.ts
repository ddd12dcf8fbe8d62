/**
 * The admin HTTP server: /metrics (Prometheus), /healthz (the process runs) and
 * /readyz (the database is connected and the installed schema checked), plain
 * node:http, GET and HEAD only, open without a token (Prometheus and probes expect
 * that; they serve no configuration and no error detail beyond the database's own
 * message, so they never show a secret). Every other path goes to the web console
 * when it is on (src/console/, with its own authentication).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpListen } from '../config/types.js';
import { AppError, describeError } from '../util/errors.js';

export interface AdminHandlers {
  /** The Prometheus text and its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Why the daemon is not ready; undefined when it is. */
  readinessProblem(): Promise<string | undefined>;
  /** The web console (every other path); absent when http.console is off. */
  console?(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatAddress(a: HttpListen): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export class AdminServer {
  private server: Server | undefined;
  private bound: HttpListen | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly listen: HttpListen,
    private readonly handlers: AdminHandlers,
  ) {}

  /** The address actually bound (port 0 picks one); undefined until started. */
  get address(): HttpListen | undefined {
    return this.bound;
  }

  /** Binds the address; fails with an AppError naming http.listen when it cannot. Idempotent. */
  async start(): Promise<HttpListen> {
    if (this.bound) return this.bound;
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the address is already in use' : code === 'EADDRNOTAVAIL' ? 'no interface has this address' : describeError(err);
      throw new AppError('HTTP_LISTEN', `http.listen: cannot listen on ${formatAddress(this.listen)}: ${why}`, {
        hint: 'choose another http.listen address (port 0 picks a free one), stop what uses it, or set http.listen to "off"',
        cause: err,
      });
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.bound = { host: a.address, port: a.port };
    return this.bound;
  }

  /** Closes the server and its idle keep-alive connections. Idempotent. */
  stop(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    return this.stopping;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
        if (this.handlers.console) return await this.handlers.console(req, res);
        return send(req, res, 404, 'not found: the admin server serves /metrics, /healthz and /readyz (the web console is off: http.console)\n');
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return send(req, res, 405, 'method not allowed: use GET or HEAD\n');
      }
      if (path === '/healthz') return send(req, res, 200, 'ok\n');
      if (path === '/readyz') {
        const problem = await this.handlers.readinessProblem();
        return problem === undefined ? send(req, res, 200, 'ready\n') : send(req, res, 503, `not ready: ${problem}\n`);
      }
      const { contentType, body } = await this.handlers.metrics();
      return send(req, res, 200, body, contentType);
    } catch (err) {
      return send(req, res, 500, `internal error: ${describeError(err)}\n`);
    }
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.statusCode = status;
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}
