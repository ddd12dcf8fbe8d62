/**
 * A TCP proxy on 127.0.0.1 (or another loopback address) in front of a real server,
 * to take the server away from a daemon and give it back:
 *
 *   const proxy = await startTcpProxy(5432);   // connect the daemon to proxy.port
 *   await proxy.cut();                         // connections dropped, new ones refused
 *   await proxy.restore();                     // accepting again, on the same port
 *   proxy.hang();                              // connections stay open, nothing is forwarded
 *   await proxy.close();
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Connections carried now. */
  readonly connections: number;
  /** Destroys every carried connection and stops accepting (connects are refused). */
  cut(): Promise<void>;
  /**
   * A server that stopped answering: connections stay open (and new ones are
   * accepted) but nothing is forwarded either way, until restore(), which drops them.
   */
  hang(): void;
  /** Accepts again on the same port (and forwards, after a hang). */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
  /** Where the proxy listens: another loopback address (127.0.0.2) makes a different host name. */
  listenHost = '127.0.0.1',
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let hanging = false;

  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, targetHost);
        if (hanging) {
          // Held open, never forwarded.
          for (const a of [client, upstream]) {
            sockets.add(a);
            a.on('error', () => undefined);
            a.on('close', () => sockets.delete(a));
          }
          return;
        }
        for (const [a, b] of [
          [client, upstream],
          [upstream, client],
        ] as const) {
          sockets.add(a);
          a.pipe(b);
          a.on('error', () => b.destroy());
          a.on('close', () => {
            sockets.delete(a);
            b.destroy();
          });
        }
      });
      s.once('error', reject);
      s.listen(port, listenHost, () => resolve(s));
    });

  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  server = await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    get connections() {
      return sockets.size / 2;
    },
    cut: stop,
    hang() {
      hanging = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async restore() {
      if (hanging) {
        hanging = false;
        for (const socket of sockets) socket.destroy();
      }
      server ??= await listen(port);
    },
    close: stop,
  };
}
