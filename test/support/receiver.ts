/**
 * A real HTTP receiver for tests: node:http (or node:https) on 127.0.0.1,
 * port 0. It records every request (headers, raw body text, time, which TCP
 * connection carried it) and answers according to a mode that tests change at
 * run time. Waiting is event-driven (`waitFor`), never a fixed sleep.
 *
 *   const rx = await startReceiver();
 *   rx.setMode(503);                       // every request gets 503
 *   rx.queue({ kind: 'status', status: 500 }, 'hang');  // next two, then back to the mode
 *   await rx.waitFor(3);                   // three requests recorded
 *   await rx.down();                       // connection refused until rx.up()
 *   await rx.close();
 */
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedRequest {
  /** 1-based arrival order (of complete requests). */
  readonly seq: number;
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  /** Lower-case header names, as node:http gives them. */
  readonly headers: IncomingHttpHeaders;
  /** The raw body, decoded as UTF-8, never parsed (bigints and 12.50 stay as sent). */
  readonly body: string;
  /** Date.now() when the body was complete. */
  readonly receivedAt: number;
  /** Which accepted TCP connection carried the request (1-based). */
  readonly connectionId: number;
  /** What the receiver did: a status code, 'hang', 'destroy', or 'handler'. Set when it responds. */
  response?: number | 'hang' | 'destroy' | 'handler';
}

export type ReceiverHandler = (
  req: ReceivedRequest,
  res: ServerResponse,
  raw: IncomingMessage,
) => void | Promise<void>;

export type ReceiverMode =
  /** 200 (or `status`) with an empty body, or `body`. */
  | { kind: 'ok'; status?: number; body?: string }
  /** Any status, with optional headers (e.g. `{ 'retry-after': '2' }`) and body. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Answer `status` (default 200) after `ms` milliseconds. */
  | { kind: 'delay'; ms: number; status?: number }
  /** Never answer (the socket stays open until the client gives up or the receiver closes). */
  | { kind: 'hang' }
  /**
   * Close the socket without a complete response: `before-response` (default)
   * right after reading the request, `mid-body` after sending 200 headers
   * announcing a longer body than is written.
   */
  | { kind: 'destroy'; when?: 'before-response' | 'mid-body' }
  /** Your own handler; it must end or destroy the response. */
  | { kind: 'handler'; handler: ReceiverHandler };

/** Shorthands: 'ok' | 'hang' | 'destroy', a status code, or a handler function. */
export type ReceiverModeInput = ReceiverMode | 'ok' | 'hang' | 'destroy' | number | ReceiverHandler;

export interface ReceiverOptions {
  /** Initial mode. Default 'ok'. */
  readonly mode?: ReceiverModeInput;
  /** Path put in `url`. Default '/webhook'. */
  readonly path?: string;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: string; readonly cert: string };
  /** Server keep-alive timeout, ms. Default Node's (5000). */
  readonly keepAliveTimeoutMs?: number;
  /** Port to listen on (to bring a receiver back where a closed one was). Default 0: any free port. */
  readonly port?: number;
}

export interface Receiver {
  /** `http://127.0.0.1:<port><path>` (https with `tls`). */
  readonly url: string;
  readonly port: number;
  /** Every complete request, in arrival order. Clear it with `events.length = 0`. */
  readonly events: ReceivedRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** TCP connections open now. */
  readonly openConnections: number;
  /** Sets the mode for every following request (after any queued one-shot modes). */
  setMode(mode: ReceiverModeInput): void;
  /** One-shot modes used by the next requests, in order, before falling back to the mode. */
  queue(...modes: ReceiverModeInput[]): void;
  /**
   * Resolves when `events.length >= count`, or when `predicate(events)` is true.
   * Rejects after `timeoutMs` (default 5000) listing what was received.
   */
  waitFor(condition: number | ((events: readonly ReceivedRequest[]) => boolean), timeoutMs?: number): Promise<void>;
  /**
   * Stops listening and destroys every open connection, so that clients get
   * "connection refused" until `up()`. The port stays this receiver's. Idempotent.
   */
  down(): Promise<void>;
  /** Listens again on the same port after `down()`. Idempotent. */
  up(): Promise<void>;
  /** Stops listening and destroys every open connection (hanging ones included). Idempotent. */
  close(): Promise<void>;
}

function normalise(mode: ReceiverModeInput): ReceiverMode {
  if (typeof mode === 'function') return { kind: 'handler', handler: mode };
  if (typeof mode === 'number') return { kind: 'status', status: mode };
  if (typeof mode === 'string') return mode === 'ok' ? { kind: 'ok' } : mode === 'hang' ? { kind: 'hang' } : { kind: 'destroy' };
  return mode;
}

/** One line per request, for failure messages. */
export function describeRequest(r: ReceivedRequest): string {
  const id = r.headers['webhook-id'];
  const body = r.body.length > 120 ? r.body.slice(0, 120) + '…' : r.body;
  return `#${r.seq} ${r.method} ${r.url}${id ? ` webhook-id=${String(id)}` : ''} -> ${r.response ?? 'pending'} body=${body}`;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const events: ReceivedRequest[] = [];
  const sockets = new Map<Socket, number>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  const queued: ReceiverMode[] = [];
  let mode = normalise(opts.mode ?? 'ok');
  let connections = 0;
  let closed = false;

  // Predicates often scan every event; under a burst of thousands of requests,
  // checking them once per request would be quadratic. Check at most every 2 ms.
  let wakeTimer: NodeJS.Timeout | undefined;
  const scheduleWake = (): void => {
    if (wakeTimer !== undefined || waiters.size === 0) return;
    wakeTimer = setTimeout(() => {
      wakeTimer = undefined;
      for (const wake of [...waiters]) wake();
    }, 2);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const record: ReceivedRequest = {
        seq: events.length + 1,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
        connectionId: sockets.get(req.socket) ?? 0,
      };
      events.push(record);
      respond(queued.shift() ?? mode, record, req, res);
      scheduleWake();
    });
    // A client that gives up mid-upload: nothing to record.
    req.on('error', () => undefined);
  };

  const respond = (m: ReceiverMode, record: ReceivedRequest, req: IncomingMessage, res: ServerResponse): void => {
    switch (m.kind) {
      case 'ok':
        record.response = m.status ?? 200;
        res.writeHead(record.response).end(m.body ?? '');
        return;
      case 'status':
        record.response = m.status;
        res.writeHead(m.status, m.headers).end(m.body ?? '');
        return;
      case 'delay': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          record.response = m.status ?? 200;
          if (!res.destroyed) res.writeHead(record.response).end();
        }, m.ms);
        timers.add(timer);
        return;
      }
      case 'hang':
        record.response = 'hang';
        return;
      case 'destroy':
        record.response = 'destroy';
        if (m.when === 'mid-body') {
          res.writeHead(200, { 'content-length': '1000', 'content-type': 'text/plain' });
          res.write('partial', () => req.socket.destroy());
        } else {
          req.socket.destroy();
        }
        return;
      case 'handler':
        record.response = 'handler';
        Promise.resolve()
          .then(() => m.handler(record, res, req))
          .catch((err: unknown) => {
            if (!res.headersSent) res.writeHead(500).end(`receiver handler failed: ${String(err)}`);
            else res.destroy();
          });
        return;
    }
  };

  const server: Server = opts.tls
    ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, onRequest)
    : createHttpServer(onRequest);
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  server.on('connection', (socket: Socket) => {
    connections += 1;
    sockets.set(socket, connections);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  /** Stops accepting and drops every connection; resolves once the listener is closed. */
  const stopListening = (): Promise<void> => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of sockets.keys()) socket.destroy();
    return done;
  };
  await listen(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  let isDown = false;
  const path = opts.path ?? '/webhook';

  const waitFor: Receiver['waitFor'] = (condition, timeoutMs = 5000) => {
    const met = (): boolean => (typeof condition === 'number' ? events.length >= condition : condition(events));
    if (met()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const check = (): void => {
        let ok: boolean;
        try {
          ok = met();
        } catch (err) {
          done();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (ok) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        const wanted = typeof condition === 'number' ? `${condition} request(s)` : 'the predicate to hold';
        const got = events.length === 0 ? 'none' : '\n  ' + events.map(describeRequest).join('\n  ');
        reject(new Error(`receiver.waitFor: timed out after ${timeoutMs} ms waiting for ${wanted}; got ${events.length}: ${got}`));
      }, timeoutMs);
      waiters.add(check);
    });
  };

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}${path}`,
    port,
    events,
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    setMode(next) {
      mode = normalise(next);
    },
    queue(...modes) {
      queued.push(...modes.map(normalise));
    },
    waitFor,
    async down() {
      if (closed || isDown) return;
      isDown = true;
      await stopListening();
    },
    async up() {
      if (closed || !isDown) return;
      await listen(port);
      isDown = false;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (wakeTimer !== undefined) clearTimeout(wakeTimer);
      if (isDown) return;
      await stopListening();
    },
  };
}
