import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PagerDutyStub, startPagerDutyStub } from './pagerduty-stub.js';

const RK = 'R0UTINGKEY0000000000000000000001';
const TOKEN_HEADERS = { authorization: 'Token token=test-token', accept: 'application/vnd.pagerduty+json;version=2' };
const FROM = 'bot@example.com';

let stub: PagerDutyStub;

beforeEach(async () => {
  stub = await startPagerDutyStub();
});

afterEach(async () => {
  await stub.close();
});

interface Reply {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
  text: string;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(`${stub.url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, json, text };
}

const rest = (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) =>
  call(method, path, body, { ...TOKEN_HEADERS, from: FROM, ...extra });

function trigger(dedupKey?: string, routingKey = RK) {
  return call('POST', '/v2/enqueue', {
    routing_key: routingKey,
    event_action: 'trigger',
    ...(dedupKey === undefined ? {} : { dedup_key: dedupKey }),
    payload: { summary: 'DiskFull on db1', source: 'db1', severity: 'critical' },
  });
}

const event = (action: string, dedupKey: string) =>
  call('POST', '/v2/enqueue', { routing_key: RK, event_action: action, dedup_key: dedupKey });

function incidentBody(incidentKey?: string, serviceId = 'PSVC1', assignee?: string) {
  return {
    incident: {
      type: 'incident',
      title: 'DiskFull on db1',
      service: { id: serviceId, type: 'service_reference' },
      ...(incidentKey === undefined ? {} : { incident_key: incidentKey }),
      ...(assignee === undefined ? {} : { assignments: [{ assignee: { id: assignee, type: 'user_reference' } }] }),
      body: { type: 'incident_body', details: 'disk almost full' },
    },
  };
}

async function createIncident(incidentKey?: string, serviceId = 'PSVC1'): Promise<Record<string, unknown>> {
  const reply = await rest('POST', '/incidents', incidentBody(incidentKey, serviceId));
  expect(reply.status).toBe(201);
  return reply.json.incident as Record<string, unknown>;
}

describe('startPagerDutyStub', () => {
  it('listens on an ephemeral loopback port and answers unknown paths with 404', async () => {
    expect(stub.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stub.host).toBe(`127.0.0.1:${stub.port}`);
    expect((await call('GET', '/nope')).status).toBe(404);
    expect(stub.requests[0]?.route).toBe('unknown');
  });
});

describe('Events API v2', () => {
  it('accepts a trigger with 202 and records it', async () => {
    const before = Date.now();
    const reply = await trigger('k1');
    expect(reply.status).toBe(202);
    expect(reply.json).toEqual({ status: 'success', message: 'Event processed', dedup_key: 'k1' });

    expect(stub.events()).toHaveLength(1);
    expect(stub.events()[0]?.payload?.summary).toBe('DiskFull on db1');
    const [request] = stub.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/v2/enqueue', route: 'events', status: 202 });
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.at).toBeGreaterThanOrEqual(before);
    expect(request?.note).toBe('alert opened');
  });

  it('generates a dedup_key when the trigger has none', async () => {
    const reply = await trigger();
    expect(reply.status).toBe(202);
    expect(reply.json.dedup_key).toMatch(/^[0-9a-f]{32}$/);
    expect(stub.alertState(RK, String(reply.json.dedup_key))?.status).toBe('triggered');
  });

  it('rejects invalid events with 400 and the invalid-event shape', async () => {
    const missing = await call('POST', '/v2/enqueue', {
      routing_key: RK,
      event_action: 'trigger',
      payload: { summary: 's', source: 'h' },
    });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ status: 'invalid event', message: 'Event object is invalid' });
    expect(String(missing.json.errors)).toMatch(/severity/);

    expect((await call('POST', '/v2/enqueue', { routing_key: RK, event_action: 'explode' })).status).toBe(400);
    expect(
      (await call('POST', '/v2/enqueue', { routing_key: '', event_action: 'resolve', dedup_key: 'k' })).status,
    ).toBe(400);
    const noKey = await call('POST', '/v2/enqueue', { routing_key: RK, event_action: 'resolve' });
    expect(noKey.status).toBe(400);
    expect(String(noKey.json.errors)).toMatch(/dedup_key/);
    expect((await call('POST', '/v2/enqueue', 'not json')).status).toBe(400);
    const long = await call('POST', '/v2/enqueue', {
      routing_key: RK,
      event_action: 'trigger',
      payload: { summary: 'x'.repeat(1025), source: 'h', severity: 'info' },
    });
    expect(long.status).toBe(400);
    expect(stub.openAlerts()).toEqual([]);
    expect(stub.events({ accepted: true })).toEqual([]);
    expect(stub.events()).toHaveLength(5); // the non-JSON one is only in stub.requests
  });

  it('refuses an event or change event over 512,000 bytes with 400, and ingests nothing', async () => {
    const payload = { summary: 'DiskFull on db1', source: 'db1', severity: 'critical' };
    const body = { routing_key: RK, event_action: 'trigger', dedup_key: 'big', payload };
    const pad = 512_000 - JSON.stringify({ ...body, client: '' }).length;
    expect((await call('POST', '/v2/enqueue', { ...body, client: 'x'.repeat(pad) })).status).toBe(202);
    const over = await call('POST', '/v2/enqueue', { ...body, dedup_key: 'big2', client: 'x'.repeat(pad) });
    expect(over.status).toBe(400);
    expect(over.json).toMatchObject({ status: 'invalid event', message: 'Event object is invalid' });
    expect(over.json.errors).toEqual([expect.stringMatching(/too large: 512001 bytes/)]);
    expect(stub.alertState(RK, 'big2')).toBeUndefined();
    const change = { routing_key: RK, payload: { summary: 'deploy', custom_details: 'x'.repeat(600_000) } };
    expect((await call('POST', '/v2/change/enqueue', change)).status).toBe(400);
  });

  it('runs the trigger → dedup → acknowledge → resolve → re-trigger state machine per routing key', async () => {
    await trigger('k1');
    expect(stub.alertState(RK, 'k1')).toMatchObject({ status: 'triggered', incidentsOpened: 1, triggerCount: 1 });

    await trigger('k1');
    expect(stub.alertState(RK, 'k1')).toMatchObject({ status: 'triggered', incidentsOpened: 1, triggerCount: 2 });
    expect(stub.requests[1]?.note).toBe('deduplicated into open alert');

    await event('acknowledge', 'k1');
    expect(stub.alertState(RK, 'k1')?.status).toBe('acknowledged');
    await trigger('k1');
    expect(stub.alertState(RK, 'k1')).toMatchObject({ status: 'acknowledged', incidentsOpened: 1 });

    expect((await event('resolve', 'k1')).status).toBe(202);
    expect(stub.alertState(RK, 'k1')?.status).toBe('resolved');
    expect(stub.openAlerts()).toEqual([]);

    expect((await event('resolve', 'k1')).status).toBe(202);
    expect(stub.requests.at(-1)?.note).toBe('dropped: no open alert');
    await event('acknowledge', 'never-seen');
    expect(stub.alertState(RK, 'never-seen')).toBeUndefined();

    await trigger('k1');
    expect(stub.alertState(RK, 'k1')).toMatchObject({ status: 'triggered', incidentsOpened: 2 });

    await trigger('k1', 'OTHER-ROUTING-KEY');
    expect(stub.alertState('OTHER-ROUTING-KEY', 'k1')).toMatchObject({ status: 'triggered', incidentsOpened: 1 });
    expect(
      stub
        .openAlerts()
        .map((a) => a.routingKey)
        .sort(),
    ).toEqual(['OTHER-ROUTING-KEY', RK]);
    expect(stub.alerts()).toHaveLength(2);
  });

  it('accepts change events with routing_key and payload.summary', async () => {
    const ok = await call('POST', '/v2/change/enqueue', { routing_key: RK, payload: { summary: 'deploy v42' } });
    expect(ok.status).toBe(202);
    expect(ok.json.status).toBe('success');
    expect(stub.changeEvents()).toEqual([{ routing_key: RK, payload: { summary: 'deploy v42' } }]);

    const bad = await call('POST', '/v2/change/enqueue', { routing_key: RK, payload: {} });
    expect(bad.status).toBe(400);
    expect(bad.json.status).toBe('invalid event');
    // Change events never touch alert state.
    expect(stub.alerts()).toEqual([]);
  });
});

describe('REST API v2', () => {
  it('requires Authorization: Token token=… (401 otherwise)', async () => {
    const none = await call('GET', '/users?query=a');
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ message: 'Unauthorized' });
    expect((await call('GET', '/users', undefined, { authorization: 'Basic abc' })).status).toBe(401);
    expect((await call('GET', '/users', undefined, { authorization: 'Bearer oauth' })).status).toBe(200);

    stub.apiToken = 'right';
    expect((await call('GET', '/users', undefined, { authorization: 'Token token=wrong' })).status).toBe(401);
    expect((await call('GET', '/users', undefined, { authorization: 'Token token=right' })).status).toBe(200);
  });

  it('requires a From header on POST and PUT /incidents (400, code 2001)', async () => {
    const create = await call('POST', '/incidents', incidentBody('k'), TOKEN_HEADERS);
    expect(create.status).toBe(400);
    expect(create.json.error).toMatchObject({ code: 2001 });
    expect((create.json.error as { errors: string[] }).errors.join()).toMatch(/From/);
    expect(stub.incidents()).toEqual([]);

    const incident = await createIncident('k');
    const update = await call(
      'PUT',
      `/incidents/${String(incident.id)}`,
      { incident: { type: 'incident_reference', status: 'resolved' } },
      TOKEN_HEADERS,
    );
    expect(update.status).toBe(400);
    expect(stub.incident(String(incident.id))?.status).toBe('triggered');
  });

  it('creates, reads and updates incidents', async () => {
    stub.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
    const reply = await rest('POST', '/incidents', incidentBody('am:1', 'PSVC1', 'PALICE'));
    expect(reply.status).toBe(201);
    const incident = reply.json.incident as Record<string, unknown>;
    expect(incident).toMatchObject({
      type: 'incident',
      incident_number: 1,
      status: 'triggered',
      incident_key: 'am:1',
      title: 'DiskFull on db1',
      service: { id: 'PSVC1', type: 'service_reference' },
      assignments: [{ assignee: { id: 'PALICE', type: 'user_reference', summary: 'Alice' } }],
    });
    expect(incident.id).toMatch(/^Q[A-Z0-9]{13}$/);
    expect(incident.html_url).toBe(`${stub.url}/incidents/${String(incident.id)}`);
    expect(stub.incidentCreates()[0]?.incident?.incident_key).toBe('am:1');

    const got = await rest('GET', `/incidents/${String(incident.id)}`);
    expect(got.status).toBe(200);
    expect(got.json.incident).toEqual(incident);

    const ack = await rest('PUT', `/incidents/${String(incident.id)}`, {
      incident: { type: 'incident_reference', status: 'acknowledged' },
    });
    expect(ack.status).toBe(200);
    expect(ack.json.incident).toMatchObject({ id: incident.id, status: 'acknowledged' });
    const resolved = await rest('PUT', `/incidents/${String(incident.id)}`, {
      incident: { type: 'incident_reference', status: 'resolved' },
    });
    expect(resolved.json.incident).toMatchObject({ status: 'resolved' });
    const again = await rest('PUT', `/incidents/${String(incident.id)}`, {
      incident: { type: 'incident_reference', status: 'resolved' },
    });
    expect(again.status).toBe(400);
    expect(again.json.error).toMatchObject({ code: 1001, message: 'Incident Already Resolved' });

    expect(stub.incidentUpdates().map((u) => [u.incidentId, u.from, u.body.incident?.status])).toEqual([
      [incident.id, FROM, 'acknowledged'],
      [incident.id, FROM, 'resolved'],
      [incident.id, FROM, 'resolved'],
    ]);
    expect(stub.incidentUpdates({ accepted: true })).toHaveLength(2);

    expect((await rest('PUT', '/incidents/QNOPE', { incident: { type: 'incident_reference' } })).status).toBe(404);
    expect((await rest('GET', '/incidents/QNOPE')).status).toBe(404);
  });

  it('validates the create body', async () => {
    const bad = await rest('POST', '/incidents', { incident: { type: 'incident', service: { id: 'P' } } });
    expect(bad.status).toBe(400);
    expect((bad.json.error as { errors: string[] }).errors.join('\n')).toMatch(/title[\s\S]*service/);
    const two = incidentBody('k');
    const twoAssignees = {
      incident: {
        ...two.incident,
        assignments: [
          { assignee: { id: 'PA', type: 'user_reference' } },
          { assignee: { id: 'PB', type: 'user_reference' } },
        ],
      },
    };
    expect((await rest('POST', '/incidents', twoAssignees)).status).toBe(400);
  });

  it('creates an incident assigned to the From user already acknowledged', async () => {
    stub.users = [{ id: 'PBOT', email: FROM, name: 'Bot' }];
    const reply = await rest('POST', '/incidents', incidentBody('self', 'PSVC1', 'PBOT'));
    expect(reply.json.incident).toMatchObject({ status: 'acknowledged' });
  });

  it('rejects a create whose incident_key matches an open incident on the same service', async () => {
    const first = await createIncident('am:dup');

    const conflict = await rest('POST', '/incidents', incidentBody('am:dup'));
    expect(conflict.status).toBe(400);
    const error = conflict.json.error as { message: string; code: number; errors: string[] };
    expect(error.code).toBe(2001);
    expect(`${error.message} ${error.errors.join(' ')}`).toMatch(/incident with key/i);
    expect(stub.incidents()).toHaveLength(1);

    // Another service may use the same key; GET /incidents?incident_key finds both.
    await createIncident('am:dup', 'PSVC2');
    const listed = await rest('GET', '/incidents?incident_key=am%3Adup&service_ids%5B%5D=PSVC1');
    expect(listed.json).toMatchObject({ total: 1, more: false, incidents: [{ id: first.id }] });

    // Once resolved, the key is free again: a new incident.
    await rest('PUT', `/incidents/${String(first.id)}`, {
      incident: { type: 'incident_reference', status: 'resolved' },
    });
    const second = await createIncident('am:dup');
    expect(second.id).not.toBe(first.id);
    expect(second.incident_number).toBe(3);
  });

  it('looks users up by substring of email or name and leaves exact filtering to the client', async () => {
    stub.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PMALICE', email: 'malice@example.com', name: 'Malice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    const reply = await rest('GET', `/users?query=${encodeURIComponent('alice@example.com')}`);
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({ limit: 25, offset: 0, more: false, total: 2 });
    expect((reply.json.users as Array<{ id: string }>).map((u) => u.id)).toEqual(['PALICE', 'PMALICE']);
    expect(stub.requests.at(-1)?.query).toEqual({ query: 'alice@example.com' });

    const none = await rest('GET', '/users?query=carol');
    expect(none.json).toMatchObject({ users: [], total: 0, more: false });
    const paged = await rest('GET', '/users?query=example.com&limit=2');
    expect(paged.json).toMatchObject({ limit: 2, more: true, total: 3 });
    expect((await rest('GET', '/users/PBOB')).json.user).toMatchObject({ id: 'PBOB', type: 'user' });
  });

  it('accepts responder requests (200) and can be switched to 402', async () => {
    const incident = await createIncident('r');
    const body = {
      requester_id: 'PBOT',
      message: 'please help',
      responder_request_targets: [{ responder_request_target: { id: 'PALICE', type: 'user_reference' } }],
    };
    const ok = await rest('POST', `/incidents/${String(incident.id)}/responder_requests`, body);
    expect(ok.status).toBe(200);
    expect(ok.json.responder_request).toMatchObject({ incident: { id: incident.id }, message: 'please help' });
    expect(stub.responderRequests()[0]).toMatchObject({ incidentId: incident.id, body: { requester_id: 'PBOT' } });

    expect((await rest('POST', '/incidents/QNOPE/responder_requests', body)).status).toBe(404);
    expect((await rest('POST', `/incidents/${String(incident.id)}/responder_requests`, {})).status).toBe(400);

    stub.setResponderRequestStatus(402);
    const denied = await rest('POST', `/incidents/${String(incident.id)}/responder_requests`, body);
    expect(denied.status).toBe(402);
    expect(denied.json.error).toMatchObject({ message: 'Payment Required' });
    stub.setResponderRequestStatus(undefined);
    expect((await rest('POST', `/incidents/${String(incident.id)}/responder_requests`, body)).status).toBe(200);
    expect(stub.responderRequests({ accepted: true })).toHaveLength(2);
  });
});

describe('faults', () => {
  it('fails the next N requests with a status and headers, without ingesting them', async () => {
    stub.failNext('events', { status: 429, headers: { 'retry-after': '1', 'ratelimit-reset': '1' }, times: 2 });

    const first = await trigger('k');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect(first.headers.get('ratelimit-reset')).toBe('1');
    expect((await trigger('k')).status).toBe(429);
    expect(stub.openAlerts()).toEqual([]);

    expect((await trigger('k')).status).toBe(202);
    expect(stub.alertState(RK, 'k')?.incidentsOpened).toBe(1);
    expect(stub.events()).toHaveLength(3);
    expect(stub.events({ accepted: true })).toHaveLength(1);
    expect(stub.requests.map((r) => r.fault)).toEqual(['status', 'status', undefined]);
  });

  it('gives REST faults the PagerDuty error shape and only hits the chosen route', async () => {
    stub.failNext('users', { status: 429 });
    const limited = await rest('GET', '/users?query=a');
    expect(limited.status).toBe(429);
    expect(limited.json).toEqual({ error: { message: 'Rate Limit Exceeded', code: 2020 } });
    expect((await trigger('k')).status).toBe(202);
    expect((await rest('GET', '/users?query=a')).status).toBe(200);
  });

  it('sends raw text bodies (e.g. an HTML 502) and matches every route with *', async () => {
    stub.failNext('*', { status: 502, body: '<html>Bad Gateway</html>', times: 2 });
    const events = await trigger('k');
    expect(events.status).toBe(502);
    expect(events.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(events.text).toBe('<html>Bad Gateway</html>');
    expect((await rest('GET', '/users')).status).toBe(502);
    expect((await rest('GET', '/users')).status).toBe(200);
  });

  it('fails until cleared with times: Infinity, and clearFaults() stops it', async () => {
    stub.failNext('incidents.create', { status: 500, times: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 3; i++) expect((await rest('POST', '/incidents', incidentBody())).status).toBe(500);
    stub.clearFaults('incidents.create');
    expect((await rest('POST', '/incidents', incidentBody())).status).toBe(201);
  });

  it('fails for a span of wall time with failFor', async () => {
    stub.failFor('change', 400, { status: 503 });
    const change = { routing_key: RK, payload: { summary: 'deploy' } };
    expect((await call('POST', '/v2/change/enqueue', change)).status).toBe(503);
    expect((await call('POST', '/v2/change/enqueue', change)).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect((await call('POST', '/v2/change/enqueue', change)).status).toBe(202);
  });

  it('hangs a request until close() and then the client sees the connection drop', async () => {
    stub.hang('events');
    const pending = trigger('hung');
    const settled = pending.then(
      () => 'resolved',
      () => 'rejected',
    );
    await stub.waitFor((requests) => requests.some((r) => r.fault === 'hang'));
    const raced = await Promise.race([settled, new Promise((resolve) => setTimeout(() => resolve('pending'), 100))]);
    expect(raced).toBe('pending');
    expect(stub.openAlerts()).toEqual([]); // not processed
    expect(stub.requests[0]?.status).toBeUndefined();

    await stub.close();
    expect(await settled).toBe('rejected');
  });

  it('hangs only `times` requests; with process: true the request takes effect without an answer', async () => {
    stub.hang('events', { process: true });
    const hung = trigger('k').catch(() => 'dropped');
    await stub.waitForCount('events', 1);
    expect(stub.alertState(RK, 'k')?.status).toBe('triggered');
    expect((await trigger('k')).status).toBe(202); // second one answered normally
    expect(stub.alertState(RK, 'k')?.triggerCount).toBe(2);

    stub.dropHanging();
    expect(await hung).toBe('dropped');
  });

  it('delays an answer while applying the request at once', async () => {
    stub.delay('events', 150);
    const started = Date.now();
    const pending = trigger('slow');
    await stub.waitForCount('events', 1);
    expect(stub.alertState(RK, 'slow')?.status).toBe('triggered');
    expect((await pending).status).toBe(202);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('waitFor', () => {
  it('resolves when a later request satisfies the predicate', async () => {
    const waiting = stub.waitFor((requests) => requests.filter((r) => r.route === 'events').length >= 2, 2000);
    await trigger('a');
    await trigger('b');
    const requests = await waiting;
    expect(requests).toHaveLength(2);
  });

  it('rejects on timeout with a message listing what was received', async () => {
    await trigger('only-one');
    await expect(stub.waitFor((requests) => requests.length >= 2, 100)).rejects.toThrow(
      /timed out after 100 ms[\s\S]*received 1 request\(s\):[\s\S]*#1 POST \/v2\/enqueue → 202 \(alert opened\) .*only-one/,
    );
    await expect(stub.waitForCount('incidents.create', 1, { timeoutMs: 50 })).rejects.toThrow(
      /expected ≥1 request\(s\) to 'incidents.create'[\s\S]*received 1 request/,
    );
  });

  it('says so when nothing arrived, and quotes a throwing predicate', async () => {
    await expect(
      stub.waitFor((requests) => {
        if (requests.length === 0) throw new Error('boom');
        return true;
      }, 50),
    ).rejects.toThrow(/predicate last threw: boom\nreceived no requests/);
  });
});

describe('reset', () => {
  it('clears records, faults and state but keeps users', async () => {
    stub.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
    await trigger('k');
    await createIncident('k');
    stub.failNext('events', { status: 500, times: 5 });
    stub.reset();

    expect(stub.requests).toEqual([]);
    expect(stub.openAlerts()).toEqual([]);
    expect(stub.incidents()).toEqual([]);
    expect((await trigger('k')).status).toBe(202);
    expect(stub.requests[0]?.seq).toBe(1);
    expect((await rest('GET', '/users?query=alice')).json.total).toBe(1);
  });
});
