/**
 * Benchmark receiver, run as its own process so its CPU is not the daemon's.
 * Answers 200 (after ADL_BENCH_DELAY_MS if set), records the receipt time of each
 * row id, and reports over IPC: { count, received: [rowId, atMs][] } on request.
 */
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

const delayMs = Number(process.env.ADL_BENCH_DELAY_MS ?? 0);
let received: Array<[number, number]> = [];
let count = 0;
const now = () => performance.timeOrigin + performance.now();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = now();
    count++;
    const body = Buffer.concat(chunks).toString();
    const m = /"data":\{"id":(\d+)/.exec(body);
    if (m) received.push([Number(m[1]), at]);
    const reply = () => res.writeHead(200, { 'content-length': '0' }).end();
    if (delayMs > 0) setTimeout(reply, delayMs);
    else reply();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.send?.({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : 0 });
});
process.on('message', (msg: { type: string }) => {
  if (msg.type === 'count') process.send?.({ type: 'count', count });
  if (msg.type === 'stats') process.send?.({ type: 'stats', count, received });
  if (msg.type === 'reset') {
    received = [];
    count = 0;
    process.send?.({ type: 'reset' });
  }
  if (msg.type === 'stop') server.close(() => process.exit(0));
});
