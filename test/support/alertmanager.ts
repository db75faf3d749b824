import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDaemon } from './daemon.js';

export { eventually } from './wait.js';

// Debian's prometheus-alertmanager 0.25 on loopback, for the end-to-end suite. As Debian
// packages it, the defaults listen on every interface (web :9093, gossip 0.0.0.0:9094), so
// the web address is pinned to 127.0.0.1 and `--cluster.listen-address=` (empty) turns gossip off; each instance
// is therefore on its own, which is exactly the "HA pair that does not cluster" case when two are started.

export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';
export const AMTOOL_BIN = process.env.AMTOOL_BIN ?? '/usr/bin/amtool';

const run = promisify(execFile);

export interface AlertmanagerOptions {
  /** Where the webhook goes: changepager's POST /v1/alertmanager (or a proxy in front of it). */
  webhookUrl: string;
  token: string;
  /** A fresh directory: config and --storage.path go under it. */
  dir: string;
  name?: string;
  groupWait?: string;
  groupInterval?: string;
}

export interface Alertmanager {
  url: string;
  name: string;
  output: () => string;
  stop(): Promise<void>;
}

/** A free loopback port: bound and released, so Alertmanager (which cannot be told "port 0") can take it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The webhook receiver config the README documents, with timings short enough for a test. */
export function alertmanagerYaml(o: AlertmanagerOptions): string {
  return `route:
  receiver: changepager
  group_by: ['alertname']
  group_wait: ${o.groupWait ?? '1s'}
  group_interval: ${o.groupInterval ?? '2s'}
  repeat_interval: 1h
receivers:
  - name: changepager
    webhook_configs:
      - url: ${o.webhookUrl}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization: { type: Bearer, credentials: ${JSON.stringify(o.token)} }
`;
}

/** Starts one Alertmanager on 127.0.0.1 and resolves once /-/ready answers 200. */
export async function startAlertmanager(o: AlertmanagerOptions): Promise<Alertmanager> {
  const name = o.name ?? 'am';
  const home = join(o.dir, name);
  mkdirSync(join(home, 'data'), { recursive: true });
  const configFile = join(home, 'alertmanager.yml');
  writeFileSync(configFile, alertmanagerYaml(o));
  await run(AMTOOL_BIN, ['check-config', configFile]);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const daemon = await startDaemon(
    'alertmanager',
    ALERTMANAGER_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.path=${join(home, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      `--web.external-url=${url}`,
      '--log.level=debug',
    ],
    { readyUrl: `${url}/-/ready`, readyWithinMs: 20_000 },
  );
  return { url, name, ...daemon };
}

export interface AlertSpec {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  /** RFC 3339; Prometheus always sets it, so HA instances agree on the episode. */
  start?: string;
  /** RFC 3339 in the past resolves the alert. */
  end?: string;
}

/** `amtool alert add`: what a Prometheus would post to /api/v2/alerts. */
export async function amtoolAdd(am: Alertmanager, alert: AlertSpec): Promise<void> {
  const args = [`--alertmanager.url=${am.url}`, 'alert', 'add'];
  for (const [k, v] of Object.entries(alert.labels)) args.push(`${k}=${v}`);
  for (const [k, v] of Object.entries(alert.annotations ?? {})) args.push(`--annotation=${k}=${v}`);
  if (alert.start) args.push(`--start=${alert.start}`);
  if (alert.end) args.push(`--end=${alert.end}`);
  args.push('--generator-url=http://prometheus.local/graph');
  await run(AMTOOL_BIN, args);
}

export interface TappedRequest {
  at: number;
  status: number;
  body: { externalURL?: string; status?: string; groupKey?: string; alerts?: { fingerprint: string }[] };
}

export interface WebhookTap {
  url: string;
  requests: TappedRequest[];
  /** Answer the next `n` webhooks with 503 instead of forwarding them. */
  failNext(n: number): void;
  close(): Promise<void>;
}

/**
 * A loopback proxy in front of changepager that records every webhook Alertmanager sends and can answer 503 to
 * some of them (so Alertmanager retries, as it does after a real 5xx); the rest are forwarded unchanged.
 */
export async function startWebhookTap(target: string): Promise<WebhookTap> {
  const requests: TappedRequest[] = [];
  let failing = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: TappedRequest['body'] = {};
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        // recorded as {} : changepager will say what is wrong with it
      }
      const record: TappedRequest = { at: Date.now(), status: 0, body };
      requests.push(record);
      if (failing > 0) {
        failing--;
        record.status = 503;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"storage_unavailable"}');
        return;
      }
      const upstream = new URL(req.url ?? '/', target);
      const fwd = httpRequest(
        upstream,
        { method: req.method, headers: { ...req.headers, host: upstream.host } },
        (up) => {
          record.status = up.statusCode ?? 0;
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on('error', () => {
        record.status = 502;
        res.writeHead(502).end();
      });
      fwd.end(raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(n) {
      failing = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
