/** `install` and `uninstall`: the explicit, printable, reversible side of capture. */
import { applyInstall, applyUninstall, planInstall, planUninstall, type InstallStep } from '../capture/postgres/install.js';
import { EXIT, printError } from './output.js';
import { ExitCode, loadConfigOrExit, withDatabase } from './common.js';

function printSql(steps: readonly InstallStep[]): void {
  if (steps.length === 0) {
    process.stdout.write('-- nothing to do: everything is installed and current\n');
    return;
  }
  for (const step of steps) process.stdout.write(`-- ${step.description}\n${step.sql.trim()}\n\n`);
}

export async function installCommand(opts: { config: string; dryRun: boolean }): Promise<number> {
  const { config } = loadConfigOrExit(opts.config);
  return withDatabase(config, async (client) => {
    try {
      if (opts.dryRun) {
        const plan = await planInstall(client, config);
        for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
        printSql(plan.steps);
        return EXIT.ok;
      }
      const plan = await applyInstall(client, config);
      for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
      if (plan.steps.length === 0) process.stdout.write('Nothing to do: everything is installed and current.\n');
      for (const s of plan.steps) process.stdout.write(`Installed: ${s.description}\n`);
      return EXIT.ok;
    } catch (err) {
      if (err instanceof ExitCode) throw err;
      printError(err);
      return EXIT.runtime;
    }
  });
}

export async function uninstallCommand(opts: { config: string; dryRun: boolean; dropSchema: boolean }): Promise<number> {
  const { config } = loadConfigOrExit(opts.config);
  return withDatabase(config, async (client) => {
    try {
      if (opts.dryRun) {
        printSql(await planUninstall(client, config, opts.dropSchema));
        return EXIT.ok;
      }
      const steps = await applyUninstall(client, config, opts.dropSchema);
      if (steps.length === 0) process.stdout.write('Nothing to do: no capture trigger is installed.\n');
      for (const s of steps) process.stdout.write(`Done: ${s.description}\n`);
      if (!opts.dropSchema) {
        process.stdout.write(`The journal and dead letters are kept in schema ${config.listener.schema}; --drop-schema removes them.\n`);
      }
      return EXIT.ok;
    } catch (err) {
      printError(err);
      return EXIT.runtime;
    }
  });
}
