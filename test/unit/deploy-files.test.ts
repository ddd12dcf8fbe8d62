/**
 * The Debian deployment files (deploy/): the systemd units keep their key settings,
 * agree with the program (signals, shutdown time, CLI path, config defaults), and
 * the logrotate file rotates the directory the units may write, with the signal
 * that makes the program reopen its log. When `systemd-analyze` is installed, the
 * units are also checked by systemd itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { shebangNodeFlags } from '../../src/util/node-flags.js';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULTS } from '../../src/config/schema.js';

const UNIT = 'deploy/systemd/app-db-listener.service';
const TEMPLATE = 'deploy/systemd/app-db-listener@.service';
const LOGROTATE = 'deploy/logrotate/app-db-listener';
const LOG_DIR = '/var/log/app-db-listener';
const USER = 'app-db-listener';

/** A unit file as section -> key -> every value given (in order); comments and blank lines dropped. */
export function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** Seconds in a systemd time span such as `60`, `90s`, `1min 30s`. */
export function timeSpanSeconds(span: string): number {
  const units: Record<string, number> = { '': 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)(s|sec|m|min|h|)$/.exec(part);
    if (!m) throw new Error(`not a time span: ${span}`);
    total += Number(m[1]) * units[m[2]!]!;
  }
  return total;
}

/** Bytes in a systemd size such as `512M` or `1G`. */
export function sizeBytes(size: string): number {
  const m = /^(\d+)([KMG]?)$/.exec(size.trim());
  if (!m) throw new Error(`not a size: ${size}`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf(m[2] || ' ');
}

describe('deploy file helpers', () => {
  it.each([
    ['60', 60],
    ['90s', 90],
    ['1min 30s', 90],
  ])('time span %s is %d s', (span, seconds) => {
    expect(timeSpanSeconds(span)).toBe(seconds);
  });
  it.each([
    ['512M', 512 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['4096', 4096],
  ])('size %s is %d bytes', (size, bytes) => {
    expect(sizeBytes(size)).toBe(bytes);
  });
  it('reads the node flags of a script\'s first line', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'adl-shebang-'));
    const file = (first: string) => {
      const f = path.join(dir, 'x.js');
      writeFileSync(f, `${first}\nconsole.log(1);\n`);
      return f;
    };
    expect(shebangNodeFlags(file('#!/usr/bin/env -S node --a=1  --b'))).toEqual(['--a=1', '--b']);
    expect(shebangNodeFlags(file('#!/usr/bin/env -S node'))).toEqual([]);
    expect(shebangNodeFlags(file('#!/usr/bin/env node'))).toEqual([]);
    expect(shebangNodeFlags(file('console.log(0);'))).toEqual([]);
  });
  it('keeps every value of a repeated key', () => {
    const unit = parseUnit('[Service]\nEnvironmentFile=-/a\n# comment\nEnvironmentFile=-/b\nCapabilityBoundingSet=\n');
    expect(unit.get('Service')?.get('EnvironmentFile')).toEqual(['-/a', '-/b']);
    expect(unit.get('Service')?.get('CapabilityBoundingSet')).toEqual(['']);
  });
});

describe.each([
  [UNIT, '/etc/app-db-listener/config.yaml'],
  [TEMPLATE, '/etc/app-db-listener/%i.yaml'],
])('%s', (file, configPath) => {
  const unit = parseUnit(readFileSync(file, 'utf8'));
  const service = unit.get('Service')!;
  const one = (key: string): string => {
    const values = service.get(key) ?? [];
    expect(values, `${file}: [Service] ${key}`).toHaveLength(1);
    return values[0]!;
  };

  it('runs the built CLI with its own config, as a dedicated user that is not root', () => {
    expect(one('User')).toBe(USER);
    expect(one('Group')).toBe(USER);
    const bin = (JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> }).bin['app-db-listener'];
    expect(one('ExecStart')).toMatch(new RegExp(`^/usr/bin/node .*/${bin!.replace(/\./g, '\\.')} run --config ${configPath.replace(/\./g, '\\.')}$`));
  });

  it('runs node with the flags of the CLI\'s own first line (memory tuning)', () => {
    const flags = shebangNodeFlags('src/cli/main.ts');
    expect(flags).toContain('--max-semi-space-size=2');
    const execStart = one('ExecStart');
    for (const f of flags) expect(execStart, file).toContain(` ${f} `);
    expect(readFileSync('deploy/bin/app-db-listener', 'utf8')).toContain(`/usr/bin/node ${flags.join(' ')} /opt/`);
  });

  it('reads secrets from /etc/default, never failing when the file is missing', () => {
    expect(service.get('EnvironmentFile')?.[0]).toBe('-/etc/default/app-db-listener');
    for (const f of service.get('EnvironmentFile') ?? []) expect(f).toMatch(/^-\/etc\/default\//);
  });

  it('stops with SIGTERM and waits longer than the default shutdown_timeout', () => {
    expect(one('KillSignal')).toBe('SIGTERM');
    const defaultShutdown = DEFAULTS.webhook.timeout + DEFAULTS.worker.shutdown_margin;
    expect(defaultShutdown).toBe(35);
    expect(timeSpanSeconds(one('TimeoutStopSec'))).toBeGreaterThan(defaultShutdown);
  });

  it('restarts on failure but not on a config error (exit 2), and reloads with SIGHUP', () => {
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('2');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it('is hardened: no privileges, read-only system, writes only its log directory', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('ReadWritePaths')).toBe(LOG_DIR);
    expect(one('LogsDirectory')).toBe(LOG_DIR.replace('/var/log/', ''));
    // V8's JIT needs writable executable memory: this setting would crash node.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });

  it('fits a 3 GB server: MemoryMax between 256 MB and 1 GB, MemoryHigh below it, heap limit below both', () => {
    const max = sizeBytes(one('MemoryMax'));
    expect(max).toBeGreaterThanOrEqual(256 * 1024 ** 2);
    expect(max).toBeLessThanOrEqual(1024 ** 3);
    expect(sizeBytes(one('MemoryHigh'))).toBeLessThan(max);
    const heapMb = Number(/--max-old-space-size=(\d+)/.exec(one('ExecStart'))?.[1]);
    expect(heapMb * 1024 ** 2).toBeLessThan(sizeBytes(one('MemoryHigh')));
  });

  it('is started at boot', () => {
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });
});

describe(LOGROTATE, () => {
  const text = readFileSync(LOGROTATE, 'utf8');

  it('rotates the log files in the directory the units may write, created for the service user', () => {
    expect(text).toMatch(new RegExp(`^${LOG_DIR}/\\*\\.log \\{$`, 'm'));
    expect(text).toMatch(new RegExp(`^\\s+create 0640 ${USER} ${USER}$`, 'm'));
    // The example config's log file is one of them.
    const env = {
      DB_PASSWORD: 'p',
      DB_NAME: 'shop',
      WEBHOOK_URL: 'https://hooks.example.com/db',
      WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
    };
    const example = loadConfig('deploy/config.example.yaml', env);
    expect(example.warnings).toEqual([]);
    expect(example.config.logging.file).toMatch(new RegExp(`^${LOG_DIR}/[^/]+\\.log$`));
    expect(example.config.http.listen).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it('sends SIGHUP (what ExecReload sends, and what reopens the log) to both units', () => {
    const post = /postrotate\n([\s\S]*?)\n\s*endscript/.exec(text)?.[1] ?? '';
    expect(post).toMatch(/--signal=SIGHUP/);
    expect(post).toMatch(/--kill-whom=main/);
    expect(post).toContain("'app-db-listener.service'");
    expect(post).toContain("'app-db-listener@*.service'");
    expect(text).toMatch(/^\s+sharedscripts$/m);
    // The run command wires SIGHUP to reopening the log file.
    expect(readFileSync('src/cli/run.ts', 'utf8')).toMatch(/process\.on\('SIGHUP', onHup\)/);
  });
});

const hasSystemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasSystemdAnalyze)('systemd-analyze verify', () => {
  // A template is checked through an instance name (FILE:UNIT), as systemd would load it.
  it.each([UNIT, `${TEMPLATE}:app-db-listener@orders.service`])('finds nothing to report in %s', (target) => {
    // It reports problems on standard error, with exit code 0 for most of them.
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', target], { encoding: 'utf8' });
    const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('app-db-listener'));
    expect(ours).toEqual([]);
    expect(r.status).toBe(0);
  });
});
