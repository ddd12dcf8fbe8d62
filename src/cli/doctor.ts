/** `doctor`: prints what `runDoctor` finds, one line per check, and the fix of each problem. */
import { ConfigError, loadConfig } from '../config/index.js';
import { configProblemReport, runDoctor, type DoctorReport } from '../doctor/index.js';
import { plural } from '../doctor/report.js';
import { EXIT, printError } from './output.js';

export interface DoctorOptions {
  readonly config: string;
  readonly json?: boolean;
}

/** The report as aligned lines: status, check, detail; then `fix:` lines under a problem or warning. */
export function formatReport(report: DoctorReport): string {
  const lines: string[] = [];
  const pad = ' '.repeat(9 + 12);
  for (const c of report.checks) {
    lines.push(`${c.status.padEnd(9)}${c.name.padEnd(12)}${c.detail}`);
    const fix = c.fix?.split('\n') ?? [];
    fix.forEach((f, i) => lines.push(`${pad}${i === 0 ? 'fix: ' : '     '}${f}`));
  }
  lines.push('');
  lines.push(
    report.problems === 0 && report.warnings === 0
      ? 'No problems found.'
      : `${plural(report.problems, 'problem')}, ${plural(report.warnings, 'warning')}.`,
  );
  return lines.join('\n') + '\n';
}

function print(report: DoctorReport, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
}

/** Exit 0 without problems, 1 with any, 2 when the config cannot be used. */
export async function doctorCommand(opts: DoctorOptions): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig(opts.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      printError(err);
      return EXIT.runtime;
    }
    print(configProblemReport(opts.config, err.message), opts.json === true);
    return EXIT.config;
  }
  const report = await runDoctor(loaded.config, { configPath: opts.config, configWarnings: loaded.warnings });
  print(report, opts.json === true);
  return report.ok ? EXIT.ok : EXIT.runtime;
}
