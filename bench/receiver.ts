/**
 * Benchmark receiver, run as its own process so that its CPU is not the daemon's.
 * Answers 200 (after a delay set over IPC), counts requests and distinct event ids
 * (of a batch, the ids of its events), and while recording keeps the receipt time of
 * each row id (and its amount, for scenarios that update one row and check the order).
 *
 * IPC requests (each answered with a message of the same type):
 *   { type: 'count' }                -> { count, distinct }
 *   { type: 'stats' }                -> { count, distinct, received: [rowId, atMs, amount][] }
 *   { type: 'reset', delayMs?, record?, status? }   (status: answer every request with it, default 200)
 *   { type: 'stop' }
 */
import { createServer } from 'node:http';
import { now } from './lib.js';

export type ReceiverRequest = { type: 'count' | 'stats' | 'stop' } | { type: 'reset'; delayMs?: number; record?: boolean; status?: number };
export type ReceiverMessage = { type: string; port?: number; count?: number; distinct?: number; received?: Array<[number, number, number]> };

let delayMs = 0;
let status = 200;
let record = false;
let received: Array<[number, number, number]> = [];
let count = 0;
let ids = new Set<string>();
/** The `id` of each event object of a batch body (a row's own "id" is not followed by "operation"). */
const EVENT_IDS = /\{"id":"([^"]+)","operation"/g;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = now();
    count++;
    const id = req.headers['webhook-id'];
    if (typeof id === 'string' && !id.startsWith('batch_')) ids.add(id);
    else if (typeof id === 'string') {
      // A batch: the ids of the events in its array.
      for (const m of Buffer.concat(chunks).toString().matchAll(EVENT_IDS)) ids.add(m[1]!);
    }
    if (record) {
      const body = Buffer.concat(chunks).toString();
      const m = /"data":\s*\{"id":\s*"?(\d+)/.exec(body);
      const amount = /"data":\s*\{[^}]*?"amount":\s*"?([\d.]+)/.exec(body);
      if (m) received.push([Number(m[1]), at, amount ? Number(amount[1]) : NaN]);
    }
    const reply = () => res.writeHead(status, { 'content-length': '0' }).end();
    if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.send?.({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : 0 });
});
process.on('message', (msg: ReceiverRequest) => {
  switch (msg.type) {
    case 'count':
      process.send?.({ type: 'count', count, distinct: ids.size });
      break;
    case 'stats':
      process.send?.({ type: 'stats', count, distinct: ids.size, received });
      break;
    case 'reset':
      received = [];
      count = 0;
      ids = new Set();
      delayMs = msg.delayMs ?? 0;
      record = msg.record ?? false;
      status = msg.status ?? 200;
      process.send?.({ type: 'reset' });
      break;
    case 'stop':
      server.close(() => process.exit(0));
      server.closeAllConnections();
      break;
  }
});
