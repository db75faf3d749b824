import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import { designDeploy, TOKEN } from '../support/harness.js';
import { eventually } from '../support/wait.js';

// Idle and slow connections against a real listening server on loopback, with small limits so the test is
// short: the connection cap holds, the timeouts close what they should, and the service answers afterwards.
// Everything here is counted (sockets closed, answers seen), never timed.

const LIMITS = 'http: { max_connections: 20, headers_timeout: PT1S, request_timeout: PT2S, keep_alive_timeout: PT1S }';

/** A raw TCP client: what it received, and whether the server closed it. */
function rawSocket(port: number, send?: string) {
  const state = { received: '', closed: false, refused: false };
  const socket = connect(port, '127.0.0.1', () => {
    if (send !== undefined) socket.write(send);
  });
  socket.on('data', (chunk) => {
    state.received += chunk.toString();
  });
  socket.on('error', () => {
    state.refused = true;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  return { state, socket };
}

function healthz(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/healthz`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe('connections: a cap, and timeouts for idle and slow clients', () => {
  let dir: string;
  let service: Service;
  const logs: string[] = [];

  async function start(yaml: string) {
    const db = JSON.stringify(join(dir, 'db.sqlite'));
    const config = parseConfig(`database: { path: ${db} }\nlisten: { host: 127.0.0.1, port: 0 }\n${yaml}`, {
      path: 'connections-test.yaml',
      env: { CHANGEPAGER_TOKEN: TOKEN },
    });
    const log = createLogger('info', { write: (line: string) => logs.push(line) });
    service = await startService({ config, log });
    return Number(new URL(service.url).port);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-connections-'));
    logs.length = 0;
  });
  afterEach(async () => {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds sockets that never send a byte to max_connections, closes them after headers_timeout, then answers', async () => {
    const port = await start(LIMITS);
    const sockets = Array.from({ length: 50 }, () => rawSocket(port));
    await eventually(() => sockets.every((s) => s.state.closed), 'every idle socket to be closed by the server');

    // 20 were let in and answered 408 once headers_timeout passed; the other 30 were closed on arrival.
    const timedOut = sockets.filter((s) => s.state.received.startsWith('HTTP/1.1 408'));
    const refused = sockets.filter((s) => s.state.received === '');
    expect(timedOut).toHaveLength(20);
    expect(refused).toHaveLength(30);

    expect(await healthz(service.url)).toBe(200);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toContain('changepager_http_connections_refused_total 30');
    // One warning line for the burst, not one per refused connection.
    const warnings = logs.filter((l) => l.includes('http.max_connections are open'));
    expect(warnings).toHaveLength(1);
  });

  it('closes a socket that sent half its headers, and one whose body trickles, with 408', async () => {
    const port = await start(LIMITS);
    const partialHeaders = rawSocket(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    const slowBody = rawSocket(
      port,
      `POST /v1/deploys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"service":`,
    );
    await eventually(() => partialHeaders.state.closed && slowBody.state.closed, 'both sockets to be closed');
    expect(partialHeaders.state.received).toMatch(/^HTTP\/1\.1 408/);
    expect(slowBody.state.received).toMatch(/^HTTP\/1\.1 408/);
    expect(await healthz(service.url)).toBe(200);
  });

  it('tells a kept-alive client how long an idle connection lasts, and closes it after that', async () => {
    const port = await start(LIMITS);
    const client = rawSocket(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await eventually(() => client.state.closed, 'the idle kept-alive connection to be closed');
    expect(client.state.received).toMatch(/^HTTP\/1\.1 200/);
    expect(client.state.received).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
  });

  it('uses the documented defaults: a proxy-friendly keep-alive of 65 s', async () => {
    const port = await start('');
    const client = rawSocket(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await eventually(() => client.state.received.includes('{"status":"ok"}'), 'the answer');
    expect(client.state.received).toMatch(/\r\nKeep-Alive: timeout=65\r\n/i);
    client.socket.destroy();
  });

  it('closes a kept-alive connection answered during shutdown, so stop() does not wait out the keep-alive', async () => {
    // Defaults: keep-alive 65 s, longer than this test may run.
    const port = await start('');
    const body = JSON.stringify(designDeploy());
    const head = `POST /v1/deploys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`;
    const requested = new Promise((resolve) => service.server.once('request', resolve));
    const client = rawSocket(port, head);
    // The request is in flight (headers in, body not yet) when the service is told to stop.
    await requested;
    const stopped = service.stop();
    client.socket.write(body);
    await stopped;
    await eventually(() => client.state.closed, 'the connection to be closed');
    expect(client.state.received).toMatch(/^HTTP\/1\.1 201/);
  });
});
