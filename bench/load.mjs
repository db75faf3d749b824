// The load generator, run as its own process by bench/run.ts so that it never shares a CPU slice with the
// service it measures. It drives autocannon programmatically (the CLI cannot vary the body per request) and
// prints one JSON line with the result.
//
//   node bench/load.mjs '{"url":"http://127.0.0.1:8080/v1/alertmanager","token":"...","mode":"unique",...}'
//
// mode "unique": every request is a new alert in a new group (new episode, decision, page and outbox row);
// mode "repeat": the same notification every time (what Alertmanager re-sends each group_interval);
// mode "storm":  `amount` requests of `alertsPerRequest` new alerts each, one group per request;
// mode "scrape": GET `url` (a Prometheus scraping /metrics), with `token` as its bearer token if given.
import autocannon from 'autocannon';

const o = JSON.parse(process.argv[2]);
const startsAt = new Date(Date.now() - 60_000).toISOString();

function notification(group, alerts) {
  return {
    receiver: 'changepager',
    status: 'firing',
    alerts: Array.from({ length: alerts }, (_, i) => ({
      status: 'firing',
      labels: {
        alertname: `Bench${group}`,
        service: o.service ?? 'checkout',
        env: 'production',
        instance: `host-${group}-${i}:9100`,
        severity: 'critical',
      },
      annotations: { summary: 'Error rate above 5%', runbook_url: 'https://runbooks.example/checkout' },
      startsAt,
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.example:9090/graph?g0.expr=rate',
      fingerprint: `${(o.prefix ?? 0).toString(16).padStart(4, '0')}${group.toString(16).padStart(8, '0')}${i.toString(16).padStart(4, '0')}`,
    })),
    groupLabels: { alertname: `Bench${group}` },
    commonLabels: { alertname: `Bench${group}`, service: o.service ?? 'checkout', env: 'production' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example:9093',
    version: '4',
    groupKey: `{}:{alertname="Bench${group}"}`,
    truncatedAlerts: 0,
  };
}

// Several generators against several replicas each take their own range of groups.
let next = o.groupOffset ?? 0;
// One template per mode, with a placeholder swapped per request: building bodies must cost the generator little.
const template = JSON.stringify(notification(0xfffffff, o.alertsPerRequest ?? 1));
const body = (n) =>
  o.mode === 'repeat'
    ? template
    : o.mode === 'storm'
      ? JSON.stringify(notification(n, o.alertsPerRequest))
      : template.replaceAll('Bench268435455', `Bench${n}`).replaceAll('0fffffff', n.toString(16).padStart(8, '0'));

const scrape = o.mode === 'scrape';
const instance = autocannon(
  {
    url: o.url,
    method: scrape ? 'GET' : 'POST',
    connections: o.connections ?? 10,
    pipelining: 1,
    ...(o.amount ? { amount: o.amount } : { duration: o.duration ?? 10 }),
    timeout: 30,
    headers: {
      ...(scrape ? {} : { 'content-type': 'application/json' }),
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    },
    ...(scrape ? {} : { requests: [{ setupRequest: (req) => ({ ...req, body: body(next++) }) }] }),
  },
  (err, r) => {
    if (err) {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exit(1);
    }
    process.stdout.write(
      `${JSON.stringify({
        requestsPerSecond: r.requests.average,
        totalRequests: r.requests.total,
        latencyMs: {
          p50: r.latency.p50,
          p90: r.latency.p90,
          p99: r.latency.p99,
          max: r.latency.max,
          mean: r.latency.average,
        },
        ok2xx: r['2xx'],
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        durationSeconds: r.duration,
        bodyBytes: scrape ? 0 : Buffer.byteLength(body(1)),
        responseBytes: r.throughput.total,
      })}\n`,
    );
  },
);
process.once('SIGTERM', () => instance.stop());
