#!/usr/bin/env node
/**
 * Command line. `app-db-listener --config config.yaml` runs the daemon, as the
 * original did; the original's single-dash `-config PATH` is accepted too.
 *
 * Exit codes: 0 success (or a graceful stop), 1 runtime error, 2 config or usage
 * error, 130 a second signal during a graceful stop.
 */
import { Command, CommanderError } from 'commander';
import { runCommand } from './run.js';
import { printError, EXIT } from './output.js';
import { VERSION } from '../version.js';

/** Rewrites the original's Go-style flags (`-config x`, `-config=x`) to `--config`. */
export function normalizeArgv(argv: readonly string[]): string[] {
  return argv.map((a) => (a === '-config' ? '--config' : a.startsWith('-config=') ? `--${a.slice(1)}` : a));
}

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
      process.exitCode = await runCommand(opts);
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
  try {
    await program.parseAsync(normalizeArgv(process.argv));
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    printError(err);
    process.exitCode = EXIT.runtime;
  }
}

await main();
