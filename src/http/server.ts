import { createServer, type RequestListener, type Server } from 'node:http';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import type { HttpServerConfig } from '../config/load.js';
import type { Metrics } from '../metrics.js';

/**
 * How often Node looks for connections past headers_timeout or request_timeout. Node's default (30 s) would let
 * an idle socket outlive headers_timeout by that much; a sweep over the open connections each second is cheap.
 */
const CONNECTION_CHECK_INTERVAL_MS = 1000;

/** At most one warning line per this long about refused connections, with the count since the last one. */
const REFUSED_LOG_INTERVAL_MS = 60_000;

export interface HttpServer {
  server: Server;
  /** Stops accepting connections and resolves once the requests in flight are answered and every one is closed. */
  close(): Promise<void>;
}

/**
 * The HTTP server, with its connection limits set on purpose rather than left at Node's defaults (no cap,
 * 60 s for headers, 5 min for a request, 5 s keep-alive, no socket timeout):
 *
 * - a socket that connects and never sends a byte, or sends its headers slowly, is answered 408 and closed
 *   after headers_timeout (Node counts it from the connection, and from the end of the previous request);
 * - a body that trickles in is cut off after request_timeout;
 * - an idle kept-alive connection is closed after keep_alive_timeout: longer than the 60 s idle timeout of the
 *   usual reverse proxies and load balancers, so they, not we, close a shared connection (no 502 on reuse);
 *   Alertmanager's client keeps idle connections longer, and opens a new one when we have closed ours;
 * - a connection where nothing moves either way for socket_timeout (a client that stopped reading its answer)
 *   is destroyed;
 * - beyond max_connections, a new connection is closed as soon as it is accepted, so idle sockets cannot use
 *   up the process's file descriptors; those already open (a probe among them, once a slot frees) go on.
 */
export function createHttpServer(
  app: RequestListener,
  deps: { http: HttpServerConfig; metrics: Metrics; log: Logger; now: () => number },
): HttpServer {
  const { http, metrics, log, now } = deps;
  const server = createServer({
    headersTimeout: http.headersTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    connectionsCheckingInterval: CONNECTION_CHECK_INTERVAL_MS,
  });
  server.maxConnections = http.maxConnections;
  server.timeout = http.socketTimeoutMs;

  let closing = false;
  server.on('request', (req, res) => {
    // server.close() only closes the connections idle at that moment: one answering a request then would stay
    // open for keep_alive_timeout and hold the shutdown up. Close each as soon as its answer is out.
    res.on('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    app(req, res);
  });

  let refused = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  server.on('drop', (data?: { remoteAddress?: string }) => {
    metrics.connectionsRefused.inc();
    refused++;
    if (now() - loggedAt < REFUSED_LOG_INTERVAL_MS) return;
    log.warn(
      { refused, maxConnections: http.maxConnections, client: data?.remoteAddress },
      'connection refused: http.max_connections are open',
    );
    loggedAt = now();
    refused = 0;
  });

  new Gauge({
    name: 'changepager_http_connections',
    help: 'Open HTTP connections (at most http.max_connections).',
    registers: [metrics.registry],
    async collect() {
      this.set(await new Promise<number>((resolve) => server.getConnections((_err, n) => resolve(n ?? 0))));
    },
  });
  return {
    server,
    close() {
      closing = true;
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
