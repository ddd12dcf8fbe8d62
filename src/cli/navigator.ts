/**
 * `navigator` as Node.js 21 and later define it (`userAgent` "Node.js/<major>"), on
 * Node.js 20, which has none. Imported first by the CLI, so before any driver.
 *
 * Why: pg tells Cloudflare Workers from Node.js by `navigator.userAgent`, and without
 * a navigator by constructing a fetch `Response`, which loads Node's whole fetch
 * implementation: 5 MB of a PostgreSQL daemon's resident memory, for a check. The
 * libraries the daemon loads read `navigator` only to tell runtimes apart (pg, zod,
 * mqtt), as they do on Node.js 22. Never set where a navigator exists, and not by
 * the library entry point (index.ts): an embedding application's globals are its own.
 */
if ((globalThis as { navigator?: unknown }).navigator === undefined) {
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.freeze({ userAgent: `Node.js/${process.versions.node.split('.')[0]}` }),
    configurable: true,
    writable: true,
    enumerable: false,
  });
}

export {};
