import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as library from '../../src/index.js';

describe('the library entry point', () => {
  it('exports what the CLI itself calls', () => {
    for (const name of ['startDaemon', 'loadConfig', 'parseConfig', 'createLogger', 'openAdmin', 'runDoctor', 'DaemonEventBus', 'ConfigError']) {
      expect(typeof (library as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('is what package.json names as main and types', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { main: string; types: string; files: string[] };
    expect(pkg.main).toBe('dist/index.js');
    expect(pkg.types).toBe('dist/index.d.ts');
    // The deployment files ship in the release tarball (docs/deploy.md installs from it).
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'migrations', 'deploy', 'docs']));
  });
});
