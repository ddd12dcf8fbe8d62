#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=50 --liftoff-only
/**
 * Command line. `app-db-listener --config config.yaml` runs the daemon, as the
 * original did; the original's single-dash `-config PATH` is accepted too.
 *
 * Exit codes: 0 success (or a graceful stop), 1 runtime error, 2 config or usage
 * error, 130 a second signal during a graceful stop.
 *
 * Node.js flags (line 1; the systemd units and deploy/bin repeat them): memory, measured
 * by `npm run bench` draining 100,000 events (peak RSS 130 MB without the last two, 85 MB
 * with them, 10-15% more CPU):
 * - --max-semi-space-size=2: a 2 MB young generation;
 * - --heap-growing-percent=50: a full collection once the heap grows 50% over what
 *   survived the last one (V8 otherwise lets a busy process grow it several times over);
 * - --liftoff-only: the HTTP parser's WebAssembly stays on the baseline compiler (its
 *   optimising compile took 35 MB for a moment at the first request; no measurable cost).
 *   V8 lists it as a testing flag; --no-wasm-tier-up and --wasm-lazy-compilation did not
 *   remove the spike. The tests and the benchmark run with it.
 */
import './navigator.js';
import { Command, CommanderError } from 'commander';
import { ExitCode } from './common.js';
import type { FilterOptions } from './admin.js';
import type { BackfillOptions } from './backfill.js';
import { printError, EXIT } from './output.js';
import { VERSION } from '../version.js';

/** Rewrites the original's Go-style flags (`-config x`, `-config=x`) to `--config`. */
export function normalizeArgv(argv: readonly string[]): string[] {
  return argv.map((a) => (a === '-config' ? '--config' : a.startsWith('-config=') ? `--${a.slice(1)}` : a));
}

/** Each command loads its own modules when it runs: `run` on PostgreSQL never loads the MySQL driver. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('app-db-listener')
    .description('Turns every INSERT, UPDATE and DELETE on database tables into a durable, ordered HTTP webhook.')
    .version(VERSION, '-v, --version')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run', { isDefault: true })
    .description('capture changes and deliver webhooks until stopped (the default command)')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--no-install', 'do not install missing migrations or triggers; fail instead')
    .action(async (opts: { config: string; install: boolean }) => {
      process.exitCode = await (await import('./run.js')).runCommand(opts);
    });

  program
    .command('install')
    .description('install the journal schema and the capture triggers (what `run` does at start)')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--dry-run', 'print the SQL that would run, change nothing')
    .action(async (opts: { config: string; dryRun?: boolean }) => {
      process.exitCode = await (await import('./install.js')).installCommand({ config: opts.config, dryRun: opts.dryRun === true });
    });

  program
    .command('uninstall')
    .description('remove the capture triggers (and with --drop-schema the journal and dead letters)')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--dry-run', 'print the SQL that would run, change nothing')
    .option('--drop-schema', 'also drop the schema with the journal and dead letters')
    .action(async (opts: { config: string; dryRun?: boolean; dropSchema?: boolean }) => {
      process.exitCode = await (await import('./install.js')).uninstallCommand({ config: opts.config, dryRun: opts.dryRun === true, dropSchema: opts.dropSchema === true });
    });

  program
    .command('status')
    .description('per destination and watched table: pending, retrying, in flight, dead letters, oldest pending age, last delivery, endpoint up/down')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--json', 'machine-readable output')
    .action(async (opts: FilterOptions) => {
      process.exitCode = await (await import('./admin.js')).statusCommand(opts);
    });

  const dl = program.command('dead-letters').description('inspect, replay or purge events that could not be delivered');
  dl.command('list')
    .description('list dead letters, oldest first')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--destination <name>', 'only this destination\'s dead letters (default: every destination)')
    .option('--table <name>', 'only this table ([schema.]name)')
    .option('--since <time>', 'only those that failed at or after this time')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'machine-readable output')
    .action(async (opts: FilterOptions) => {
      process.exitCode = await (await import('./admin.js')).deadLettersListCommand(opts);
    });
  dl.command('show <event-id>')
    .description('one dead letter, with its rows and last error')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--destination <name>', 'only this destination\'s dead letters (default: every destination)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: FilterOptions) => {
      process.exitCode = await (await import('./admin.js')).deadLettersShowCommand(id, opts);
    });
  dl.command('replay [event-ids...]')
    .description("put dead letters back in their destination's queue (same event ids) to be delivered again, to that destination only")
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--destination <name>', 'only this destination\'s dead letters (default: every destination)')
    .option('--table <name>', 'all of this table ([schema.]name)')
    .option('--since <time>', 'all that failed at or after this time')
    .option('--all', 'every dead letter')
    .action(async (ids: string[], opts: FilterOptions) => {
      process.exitCode = await (await import('./admin.js')).deadLettersReplayCommand(ids, opts);
    });
  dl.command('purge [event-ids...]')
    .description('delete dead letters for good')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--destination <name>', 'only this destination\'s dead letters (default: every destination)')
    .option('--table <name>', 'all of this table ([schema.]name)')
    .option('--before <time>', 'all that failed before this time')
    .option('--all', 'every dead letter')
    .action(async (ids: string[], opts: FilterOptions) => {
      process.exitCode = await (await import('./admin.js')).deadLettersPurgeCommand(ids, opts);
    });

  program
    .command('backfill')
    .description('send the rows a watched table already holds, as READ events, beside its live changes')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--table <name>', 'the watched table to read ([schema.]name)')
    .option('--destination <name>', 'send the rows to this destination only (default: every destination of the table)')
    .option('--where <condition>', 'only the rows matching this SQL condition on the table\'s columns')
    .option('--key <columns>', 'read by this unique key (comma-separated NOT NULL columns) instead of the primary key')
    .option('--batch-size <n>', `rows per transaction (default 500)`)
    .option('--rate <n>', 'at most this many rows per second (default, and 0: no limit)')
    .option('--max-backlog <n>', "keep the destinations' queues below this many events (default: twice worker.pool_size); more is faster, and delays live changes more")
    .option('--resume', 'continue the interrupted backfill of the table')
    .option('--cancel', 'cancel the unfinished backfill of the table')
    .addHelpText(
      'after',
      '\nOne row, one READ event (same payload as an INSERT, operation "READ"), in key order, batch by batch. ' +
        'A row changed during the backfill is never delivered in a state older than its change. ' +
        'Progress is kept: stopped or killed, --resume continues after the last committed batch. See docs/backfill.md.\n',
    )
    .action(async (opts: BackfillOptions) => {
      const { backfillCommand } = await import('./backfill.js');
      process.exitCode = await backfillCommand(opts);
    });

  program
    .command('doctor')
    .description('check the config, the database, privileges, migrations, triggers and the webhook; print the fix of each problem')
    .option('-c, --config <path>', 'config file', 'config.yaml')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nEach check prints ok, warning or problem, and every problem the command or SQL that fixes it.\n' +
        'Read-only: changes nothing, sends no event. Exit 0 without problems, 1 with any, 2 for an unusable config.',
    )
    .action(async (opts: { config: string; json?: boolean }) => {
      const { doctorCommand } = await import('./doctor.js');
      process.exitCode = await doctorCommand(opts);
    });

  program
    .command('demo')
    .description('see it work: capture changes on a demo table and print the webhooks they become')
    .option(
      '--database-url <url>',
      'a PostgreSQL of yours to use (default: $DATABASE_URL, else a private embedded PostgreSQL, started for the demo and removed at exit)',
    )
    .option('--once', 'exit after the sample changes are delivered')
    .option('--clean', 'drop the demo schemas at exit')
    .action(async (opts: { databaseUrl?: string; once?: boolean; clean?: boolean }) => {
      const { demoCommand } = await import('./demo.js');
      process.exitCode = await demoCommand({ databaseUrl: opts.databaseUrl, once: opts.once === true, clean: opts.clean === true });
    });

  program
    .command('version')
    .description('print the version')
    .action(() => {
      console.log(VERSION);
    });
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  // `run` is the default command, so a mistyped command would otherwise reach it as
  // an argument ("too many arguments for 'run'"): name the mistake instead.
  const first = process.argv[2];
  const known = program.commands.flatMap((c) => [c.name(), ...c.aliases()]).concat('help');
  if (first !== undefined && !first.startsWith('-') && !known.includes(first)) {
    process.stderr.write(`error: unknown command '${first}'; commands: ${known.filter((k) => k !== 'help').join(', ')} (see --help)\n`);
    process.exitCode = EXIT.usage;
    return;
  }
  try {
    await program.parseAsync(normalizeArgv(process.argv));
  } catch (err) {
    if (err instanceof ExitCode) {
      process.exitCode = err.code;
      return;
    }
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    printError(err);
    process.exitCode = EXIT.runtime;
  }
}

await main();
