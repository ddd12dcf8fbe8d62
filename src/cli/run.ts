/** `run`: the daemon in the foreground, with signal handling for systemd and terminals. */
import { startDaemon } from '../app.js';
import { loadConfigOrExit } from './common.js';
import { createLogger } from '../observability/logger.js';
import { AppError, describeError } from '../util/errors.js';
import { EXIT, printError } from './output.js';

export async function runCommand(opts: { config: string; install: boolean }): Promise<number> {
  const loaded = loadConfigOrExit(opts.config);
  const { config, warnings } = loaded;
  let logging;
  try {
    logging = createLogger(config.logging);
  } catch (err) {
    process.stderr.write(`error: cannot open log file ${JSON.stringify(config.logging.file)}: ${describeError(err)}\n`);
    return EXIT.runtime;
  }
  const log = logging.logger;
  for (const w of warnings) log.warn(`config: ${w}`);
  const onHup = () => logging.reopen();
  process.on('SIGHUP', onHup);

  let daemon;
  try {
    daemon = await startDaemon(config, { logger: log, install: opts.install && config.listener.auto_install });
  } catch (err) {
    const msg = err instanceof AppError ? err.message + (err.hint ? ` (hint: ${err.hint})` : '') : describeError(err);
    log.error(`Start failed: ${msg}`);
    await logging.close();
    // The log may be a file: say it on stderr too.
    if (config.logging.file) printError(err);
    process.off('SIGHUP', onHup);
    // A database type this version cannot serve is a config problem, not a runtime one.
    return err instanceof AppError && err.code === 'UNSUPPORTED_DATABASE' ? EXIT.config : EXIT.runtime;
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  log.info(`Received ${signal}: finishing in-flight deliveries (a second signal exits at once)`);
  const force = () => {
    log.warn('Second signal: exiting now; unfinished deliveries are retried after their lease expires');
    void Promise.resolve(logging.flush()).finally(() => process.exit(EXIT.forced));
  };
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  try {
    await daemon.stop();
  } catch (err) {
    log.error({ error: describeError(err) }, 'Error during shutdown');
  }
  process.off('SIGHUP', onHup);
  await logging.close();
  return EXIT.ok;
}
