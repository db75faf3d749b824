import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { createHarness, type Harness } from '../support/harness.js';

// deploy/kubernetes/ must match what the service actually uses: the config in the ConfigMap loads with the
// variables the Deployment sets (and those come from keys the Secret has), the ports and probe paths are the
// ones changepager listens and answers on, the selectors select the pods, and the PrometheusRule's rules name
// metrics changepager exports and pass `promtool check rules`.

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
// biome-ignore lint/suspicious/noExplicitAny: parsed manifests, walked by the paths Kubernetes gives them
type Doc = Record<string, any>;

function docs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Doc;
  });
}
const only = (file: string, kind: string): Doc => {
  const found = docs(file).filter((d) => d.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as Doc;
};

const deployment = only('deployment.yaml', 'Deployment');
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const configMap = only('configmap.yaml', 'ConfigMap');
const secret = only('secret.example.yaml', 'Secret');
const service = only('service.yaml', 'Service');
const monitor = only('servicemonitor.yaml', 'ServiceMonitor');
const pdb = only('poddisruptionbudget.yaml', 'PodDisruptionBudget');
const rule = only('prometheusrule.yaml', 'PrometheusRule');
const podLabels = deployment.spec.template.metadata.labels;

/** The environment the Deployment gives the container, with a stand-in value for each secret. */
function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env as Doc[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else env[e.name] = e.name === 'CHANGEPAGER_DATABASE_URL' ? 'postgres://cp:pw@postgres:5432/cp' : `${e.name}-value`;
  }
  return env;
}
const mountedConfig = () => {
  const mount = (container.volumeMounts as Doc[]).find((m) =>
    (pod.volumes as Doc[]).some((v) => v.name === m.name && v.configMap?.name === configMap.metadata.name),
  );
  return { mount, text: configMap.data['changepager.yaml'] as string };
};

describe('deploy/kubernetes', () => {
  let h: Harness;
  beforeAll(() => {
    h = createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('lists in kustomization.yaml every manifest but the example Secret', () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    const kustomization = only('kustomization.yaml', 'Kustomization');
    expect([...kustomization.resources, 'secret.example.yaml'].sort()).toEqual(files.sort());
  });

  it('runs three replicas, keeps two through a disruption, and asks for resources', () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(pdb.spec.minAvailable).toBe(2);
    expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    for (const selector of [
      deployment.spec.selector.matchLabels,
      pdb.spec.selector.matchLabels,
      service.spec.selector,
    ]) {
      expect(podLabels).toMatchObject(selector);
    }
    expect(monitor.spec.selector.matchLabels).toEqual(service.metadata.labels);
  });

  it('mounts a config that loads, on PostgreSQL, with exactly the variables the Deployment sets from the Secret', () => {
    const env = containerEnv();
    const { mount, text } = mountedConfig();
    expect(env.CHANGEPAGER_CONFIG).toBe(`${mount?.mountPath}/changepager.yaml`);
    const config = parseConfig(text, { path: 'configmap.yaml', env });
    expect(config.postgres?.url).toBe(env.CHANGEPAGER_DATABASE_URL);
    expect(config.tokens.map((t) => t.name).sort()).toEqual(['alertmanager', 'pipelines']);
    const named = [...text.matchAll(/_env: (\w+)/g)].map((m) => m[1]).sort();
    const fromSecret = (container.env as Doc[])
      .filter((e) => e.valueFrom)
      .map((e) => e.name)
      .sort();
    expect(named).toEqual(fromSecret);
    for (const e of container.env as Doc[]) {
      if (e.valueFrom) expect(Object.keys(secret.stringData)).toContain(e.valueFrom.secretKeyRef.key);
    }
    expect(Object.keys(secret.stringData)).toContain(monitor.spec.endpoints[0].authorization.credentials.key);
  });

  it('serves on the port the config listens on, and the Service and ServiceMonitor reach it by name', () => {
    const { text } = mountedConfig();
    const config = parseConfig(text, { path: 'configmap.yaml', env: containerEnv() });
    const [port] = container.ports;
    expect(port).toMatchObject({ name: 'http', containerPort: config.listen.port });
    expect(config.listen.host).toBe('0.0.0.0');
    expect(service.spec.ports[0].targetPort).toBe(port.name);
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: service.spec.ports[0].name, path: '/metrics' });
  });

  it('probes paths changepager answers: liveness and start-up on /healthz, readiness on /readyz', async () => {
    const probes = {
      startup: container.startupProbe.httpGet,
      liveness: container.livenessProbe.httpGet,
      readiness: container.readinessProbe.httpGet,
    };
    expect(Object.values(probes).map((p) => p.port)).toEqual(['http', 'http', 'http']);
    expect(probes.liveness.path).toBe('/healthz');
    expect(probes.readiness.path).toBe('/readyz');
    for (const probe of Object.values(probes)) expect((await request(h.app).get(probe.path)).status).toBe(200);
    const metrics = await request(h.app).get(monitor.spec.endpoints[0].path);
    expect(metrics.status).toBe(200);
  });

  it('alerts only on metrics changepager exports', async () => {
    const exported = new Set((await h.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    const rules = rule.spec.groups.flatMap((g: Doc) => g.rules as Doc[]);
    expect(rules.map((r: Doc) => r.alert)).toEqual(
      expect.arrayContaining([
        'ChangepagerDeliveriesStuck',
        'ChangepagerDeliveryFailures',
        'ChangepagerDatabaseUnreachable',
        'ChangepagerUnmappedPeopleGrowing',
      ]),
    );
    for (const r of rules) {
      for (const [name] of (r.expr as string).matchAll(/changepager_\w+/g)) expect(exported).toContain(name);
    }
  });

  it('has rules that promtool check rules accepts', () => {
    const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
    if (!promtool) throw new Error("promtool is not installed (Debian's prometheus package): .ci/run installs it");
    const dir = mkdtempSync(join(tmpdir(), 'changepager-rules-'));
    try {
      const file = join(dir, 'rules.yaml');
      writeFileSync(file, stringify({ groups: rule.spec.groups }));
      const out = execFileSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
      expect(out).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
