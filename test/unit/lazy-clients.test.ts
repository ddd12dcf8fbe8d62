/**
 * A broker's client library is loaded only when a destination of its type is
 * configured (src/delivery/sinks.ts): no module that `run`, `doctor` or the library
 * reach through static imports names one, so a webhook-only daemon never loads them.
 * Nor does the daemon load a database driver it does not use, or more of undici than
 * its connection pool.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const BROKER_CLIENTS = /^(amqplib|mqtt|@redis\/|@nats-io\/)/;

/** Every module reachable from `entry` through static imports (type-only imports excluded), and the packages they import. */
function staticGraph(entry: string): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\sfrom\s+'([^']+)'|^import\s+'([^']+)'/gms)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
        if (existsSync(target)) visit(target);
      } else packages.set(spec, path.relative(src, file));
    }
  };
  visit(entry);
  return { files, packages };
}

describe('broker client libraries', () => {
  it.each([['cli', 'run.ts'], ['cli', 'doctor.ts'], ['index.ts']])('are not imported statically by what %s/%s loads', (...parts) => {
    const { files, packages } = staticGraph(path.join(src, ...parts));
    // The graph is real: it reaches the sinks' factory and the webhook sink.
    expect([...files].map((f) => path.relative(src, f))).toEqual(expect.arrayContaining([path.join('delivery', 'sinks.ts'), path.join('delivery', 'webhook.ts')]));
    expect(packages.has('yaml')).toBe(true);
    const brokers = [...packages].filter(([p]) => BROKER_CLIENTS.test(p));
    expect(brokers).toEqual([]);
  });

  it('nor are the database drivers and the whole of undici by what the daemon (cli/run.ts) loads: it loads its database driver and undici\'s pool alone (delivery/http-pool.ts)', () => {
    const { packages } = staticGraph(path.join(src, 'cli', 'run.ts'));
    expect(packages.has('node:module')).toBe(true);
    expect([...packages].filter(([p]) => /^(pg|mysql2|@vlasky\/zongji|undici)(\/|$)/.test(p))).toEqual([]);
    // The check sees them where they are imported.
    expect(staticGraph(path.join(src, 'delivery', 'webhook-check.ts')).packages.has('undici')).toBe(false);
    expect(staticGraph(path.join(src, 'capture', 'mysql', 'binlog', 'reader.ts')).packages.has('mysql2/promise')).toBe(true);
    expect(staticGraph(path.join(src, 'capture', 'postgres', 'waker.ts')).packages.has('pg')).toBe(true);
  });

  it('are what the broker sinks import (so the check above looks for the right names)', () => {
    for (const sink of ['nats', 'rabbitmq', 'redis', 'mqtt']) {
      const { packages } = staticGraph(path.join(src, 'delivery', `${sink}.ts`));
      expect([...packages.keys()].some((p) => BROKER_CLIENTS.test(p)), sink).toBe(true);
    }
  });
});

describe("undici's pool alone (src/delivery/http-pool.ts)", () => {
  it('is what the webhook sink loads of undici: not the package entry, nor fetch', () => {
    const script = `await import('./dist/delivery/webhook.js');
      const { createRequire } = await import('node:module');
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('/node_modules/undici/'));
      console.log(JSON.stringify({ pool: loaded.some((f) => f.endsWith('/undici/lib/dispatcher/pool.js')), entry: loaded.some((f) => f.endsWith('/undici/index.js')), fetch: loaded.some((f) => f.includes('/undici/lib/web/')) }));`;
    const run = (s: string) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', s], { cwd: path.resolve(src, '..'), encoding: 'utf8' })) as Record<string, boolean>;
    expect(run(script)).toEqual({ pool: true, entry: false, fetch: false });
    // The check sees the entry point and fetch when they are loaded.
    expect(run(script.replace("await import('./dist/delivery/webhook.js');", "await import('./dist/delivery/webhook.js'); await import('undici');"))).toEqual({ pool: true, entry: true, fetch: true });
  });
});

describe("the CLI's navigator (src/cli/navigator.ts)", () => {
  const root = path.resolve(src, '..');
  /** What a fresh Node.js loads for `pg`, with or without the CLI's navigator first. */
  const loadPg = (withNavigator: boolean) => {
    const script = `${withNavigator ? "await import('./dist/cli/navigator.js');" : ''}
      await import('pg');
      console.log(JSON.stringify({ ua: globalThis.navigator?.userAgent ?? null, fetch: process.moduleLoadList.includes('NativeModule internal/deps/undici/undici') }));`;
    return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })) as { ua: string | null; fetch: boolean };
  };

  it.runIf(Number(process.versions.node.split('.')[0]) < 21)('keeps pg from loading Node.js fetch on Node.js 20 (its Cloudflare check builds a Response without one)', () => {
    expect(loadPg(false)).toEqual({ ua: null, fetch: true });
    expect(loadPg(true)).toEqual({ ua: `Node.js/${process.versions.node.split('.')[0]}`, fetch: false });
  });

  it('is imported first by the CLI, and never by the library entry point', () => {
    const main = readFileSync(path.join(src, 'cli', 'main.ts'), 'utf8');
    expect(/^import\s+'([^']+)'/m.exec(main)?.[1]).toBe('./navigator.js');
    expect(main.indexOf("import './navigator.js'")).toBeLessThan(main.indexOf('import {'));
    expect([...staticGraph(path.join(src, 'index.ts')).files].map((f) => path.basename(f))).not.toContain('navigator.ts');
  });
});
