/** `install` and `uninstall`: the explicit, printable, reversible side of capture. */
import type { InstallPlan, InstallStep } from '../capture/postgres/install.js';
import * as pgInstall from '../capture/postgres/install.js';
import { createMySqlPool } from '../capture/mysql/connection.js';
import * as mysqlInstall from '../capture/mysql/install.js';
import { mysqlConnectionError } from '../capture/mysql/source.js';
import type { Config } from '../config/types.js';
import { EXIT, printError } from './output.js';
import { ExitCode, loadConfigOrExit, withDatabase } from './common.js';

/** The install operations of one database family, bound to one connection. */
interface Installer {
  plan(): Promise<InstallPlan>;
  apply(): Promise<InstallPlan>;
  planUninstall(dropAll: boolean): Promise<InstallStep[]>;
  applyUninstall(dropAll: boolean): Promise<InstallStep[]>;
}

async function withInstaller<T>(config: Config, fn: (i: Installer) => Promise<T>): Promise<T> {
  if (config.database.type === 'postgres') {
    return withDatabase(config, (client) =>
      fn({
        plan: () => pgInstall.planInstall(client, config),
        apply: () => pgInstall.applyInstall(client, config),
        planUninstall: (drop) => pgInstall.planUninstall(client, config, drop),
        applyUninstall: (drop) => pgInstall.applyUninstall(client, config, drop),
      }),
    );
  }
  const pool = createMySqlPool(config.database, { connectionLimit: 1, applicationName: 'app-db-listener:cli' });
  try {
    const conn = await pool.getConnection().catch((err: unknown) => {
      printError(mysqlConnectionError(err, config));
      throw new ExitCode(EXIT.runtime);
    });
    try {
      return await fn({
        plan: () => mysqlInstall.planInstall(conn, config),
        apply: () => mysqlInstall.applyInstall(conn, config),
        planUninstall: (drop) => mysqlInstall.planUninstall(conn, config, drop),
        applyUninstall: (drop) => mysqlInstall.applyUninstall(conn, config, drop),
      });
    } finally {
      conn.release();
    }
  } finally {
    await pool.end().catch(() => undefined);
  }
}

function printSql(steps: readonly InstallStep[]): void {
  if (steps.length === 0) {
    process.stdout.write('-- nothing to do: everything is installed and current\n');
    return;
  }
  for (const step of steps) process.stdout.write(`-- ${step.description}\n${step.sql.trim()}\n\n`);
}

export async function installCommand(opts: { config: string; dryRun: boolean }): Promise<number> {
  const { config } = loadConfigOrExit(opts.config);
  return withInstaller(config, async (installer) => {
    try {
      const plan = opts.dryRun ? await installer.plan() : await installer.apply();
      for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
      if (opts.dryRun) {
        printSql(plan.steps);
        return EXIT.ok;
      }
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
  return withInstaller(config, async (installer) => {
    try {
      if (opts.dryRun) {
        printSql(await installer.planUninstall(opts.dropSchema));
        return EXIT.ok;
      }
      const steps = await installer.applyUninstall(opts.dropSchema);
      if (steps.length === 0) process.stdout.write('Nothing to do: no capture trigger is installed.\n');
      for (const s of steps) process.stdout.write(`Done: ${s.description}\n`);
      if (!opts.dropSchema) {
        process.stdout.write(
          `The journal and dead letters are kept (${config.database.type === 'postgres' ? 'schema' : 'tables prefixed'} ${config.listener.schema}); --drop-schema removes them.\n`,
        );
      }
      return EXIT.ok;
    } catch (err) {
      printError(err);
      return EXIT.runtime;
    }
  });
}
