import { type Config, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from '../config/load.js';
import type { CliIo } from './io.js';

/**
 * The config `changepager serve` would run on with the same environment (CHANGEPAGER_CONFIG, else the embedded
 * default), for the commands that act on what serve uses. Undefined when it cannot be used: the problems are then
 * written to stderr after `said` ("changepager migrate").
 */
export function serveConfig(io: CliIo, said: string): Config | undefined {
  const path = io.env.CHANGEPAGER_CONFIG || DEFAULT_CONFIG_PATH;
  try {
    return loadConfig({ path, env: io.env, readFile: io.readFile });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr(`${said}: the config cannot be used\n${err.message}\n`);
    return undefined;
  }
}
