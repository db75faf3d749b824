import { bindAddress } from '../config/load.js';
import { type CliIo, networkFailure } from './io.js';
import { serveConfig } from './serve-config.js';

/**
 * `changepager healthcheck`: asks GET /healthz where `changepager serve` with the same environment listens. It
 * loads the same config (CHANGEPAGER_CONFIG, PORT, HOST, the tokens) instead of assuming a port, so a container
 * whose config or PORT moved the service is not reported healthy by a check that looks elsewhere; and a service
 * that fell back to loopback for want of a token is reported unhealthy, since nothing outside can reach it.
 * Exits 0 healthy, 1 not (the reason on stderr), 2 on a usage error.
 */
export async function runHealthcheck(argv: string[], io: CliIo): Promise<number> {
  if (argv.length > 0) {
    io.stderr('usage: changepager healthcheck   (reads the same config and environment as changepager serve)\n');
    return 2;
  }
  const config = serveConfig(io, 'changepager healthcheck: unhealthy');
  if (!config) return 1;
  const bind = bindAddress(config);
  if (bind.narrowedFrom) {
    io.stderr(
      `changepager healthcheck: unhealthy: no API token is configured, so changepager listens on 127.0.0.1 only, not on ${bind.narrowedFrom} as configured; set CHANGEPAGER_TOKEN or auth.tokens\n`,
    );
    return 1;
  }
  if (config.listen.port === 0) {
    io.stderr('changepager healthcheck: listen.port (or PORT) is 0, any free port: there is no known port to ask\n');
    return 1;
  }
  // A wildcard address is reached through loopback from inside the same host or container.
  const host = bind.host === '0.0.0.0' ? '127.0.0.1' : bind.host === '::' ? '::1' : bind.host;
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`;
  try {
    const res = await io.fetch(`${base}/healthz`, { signal: AbortSignal.timeout(4000) });
    if (res.ok) {
      io.stdout(`ok: ${base}/healthz answered ${res.status}\n`);
      return 0;
    }
    io.stderr(`changepager healthcheck: unhealthy: ${base}/healthz answered ${res.status}\n`);
  } catch (err) {
    io.stderr(`changepager healthcheck: unhealthy: ${networkFailure({ url: base, local: false }, err)}\n`);
  }
  return 1;
}
