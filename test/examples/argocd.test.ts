import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { listeningService } from '../cli/support.js';
import { TOKEN } from '../support/harness.js';
import { renderGoTemplate } from './go-template.js';
import { readExample } from './support.js';

// examples/argocd/changepager-notifications.yaml as Argo CD Notifications would use it: the template's body
// rendered as a Go text/template (test/examples/go-template.ts) with a sample Application and repository, the
// secret reference in the service's headers filled in, and the request sent to a real changepager.

interface ConfigMap {
  data: Record<string, string>;
}

const REVISION = '9c3d4e5f60718293a4b5c6d7e8f9012377b0e12a';

function example() {
  const docs = parseAllDocuments(readExample('argocd/changepager-notifications.yaml')).map((d) => d.toJS());
  const cm = docs.find((d) => d.kind === 'ConfigMap') as ConfigMap;
  const secret = docs.find((d) => d.kind === 'Secret') as { stringData: Record<string, string> };
  return {
    cm,
    secret,
    context: parse(cm.data.context as string) as Record<string, string>,
    service: parse(cm.data['service.webhook.changepager'] as string) as {
      url: string;
      headers: { name: string; value: string }[];
    },
    template: parse(cm.data['template.changepager-deploy'] as string) as {
      webhook: { changepager: { method: string; path: string; body: string } };
    },
    triggers: parse(cm.data['trigger.on-changepager-sync'] as string) as {
      when: string;
      oncePer: string;
      send: string[];
    }[],
  };
}

/** What Argo CD hands the template: the Application, the context, and repo helpers. */
function vars(
  commitMessage: string,
  context: Record<string, string>,
  revision = REVISION,
  finishedAt = '2026-11-26T11:02:00Z',
) {
  return {
    app: {
      metadata: { name: 'checkout', namespace: 'argocd' },
      spec: { source: { repoURL: 'git@github.com:shop/checkout.git' } },
      status: {
        operationState: {
          phase: 'Succeeded',
          finishedAt,
          syncResult: { revision },
        },
      },
    },
    context,
    repo: {
      GetCommitMetadata: (rev: string) => {
        expect(rev).toBe(revision);
        return {
          Message: commitMessage,
          Author: 'Alice Example <alice@example.com>',
          Date: '2026-11-26T10:58:00Z',
          Tags: [],
        };
      },
      // Argo CD's helper: git@host:org/repo.git → https://host/org/repo.git
      RepoURLToHTTPS: (url: string) => url.replace(/^git@([^:]+):/, 'https://$1/'),
    },
  };
}

describe('examples/argocd/changepager-notifications.yaml', () => {
  let svc: Awaited<ReturnType<typeof listeningService>>;
  beforeEach(async () => {
    svc = await listeningService({ at: '2026-11-26T11:03:00Z' });
  });
  afterEach(async () => {
    await svc.close();
  });

  async function send(commitMessage: string, revision = REVISION, finishedAt = '2026-11-26T11:02:00Z') {
    const ex = example();
    const hook = ex.template.webhook.changepager;
    const body = renderGoTemplate(hook.body, vars(commitMessage, ex.context, revision, finishedAt));
    // The secret reference is filled from argocd-notifications-secret; the test's changepager has its own token.
    const secrets: Record<string, string> = { ...ex.secret.stringData, 'changepager-token': TOKEN };
    const headers = Object.fromEntries(
      ex.service.headers.map((h) => [h.name, h.value.replace(/\$([\w-]+)/g, (_m, k: string) => secrets[k] ?? '')]),
    );
    // notifications-engine joins the service URL and the template's path; the URL is the test's own.
    const res = await fetch(`${svc.url}/${hook.path.replace(/^\//, '')}`, { method: hook.method, headers, body });
    return { body, status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it('records the sync as a deploy by the commit author, with the commit linked', async () => {
    const res = await send('Cache cart "totals" <fast>\n\nLonger description');
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(JSON.parse(res.body)).toEqual({
      id: `argocd-checkout-${REVISION}-2026-11-26T11:02:00Z`,
      service: 'checkout',
      environment: 'production',
      version: REVISION,
      at: '2026-11-26T11:02:00Z',
      changes: [
        {
          author: { email: 'alice@example.com', name: 'Alice Example' },
          commit: {
            sha: REVISION,
            url: `https://github.com/shop/checkout/commit/${REVISION}`,
            message: 'Cache cart "totals" <fast>',
          },
        },
      ],
    });
    const stored = await request(svc.h.app)
      .get(`/v1/deploys/argocd-checkout-${REVISION}-2026-11-26T11:02:00Z`)
      .set('Authorization', `Bearer ${TOKEN}`);
    expect(stored.body).toMatchObject({
      service: 'checkout',
      stage: 'full',
      changes: [{ author: { email: 'alice@example.com' } }],
    });
  });

  it('is answered as a repeat when Argo CD sends the same revision again', async () => {
    expect((await send('x')).status).toBe(201);
    expect((await send('x')).status).toBe(200);
  });

  it('records a sync back to an earlier revision as a rollback of the revision synced since', async () => {
    const newer = 'aa11bb22cc33dd44ee55ff6600778899aabbccdd';
    expect((await send('Cache cart totals')).status).toBe(201);
    expect((await send('Break the cart', newer, '2026-11-26T11:10:00Z')).status).toBe(201);
    const back = await send('Cache cart totals', REVISION, '2026-11-26T11:20:00Z');
    expect(back.status).toBe(201);
    expect(back.json.rollback).toEqual({ of: [`argocd-checkout-${newer}-2026-11-26T11:10:00Z`], explicit: false });
  });

  it('fires on a successful sync, once per revision, with this template', () => {
    const { triggers, template } = example();
    expect(triggers).toEqual([
      {
        when: "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded']",
        oncePer: 'app.status.operationState.syncResult.revision',
        send: ['changepager-deploy'],
      },
    ]);
    expect(template.webhook.changepager).toMatchObject({ method: 'POST', path: '/v1/deploys' });
  });
});
