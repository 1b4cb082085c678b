// Client delivery against a local fake intake (node:http), which answers as
// the intake contract says: per-event results on 202, and 401, 413, 429,
// 503 and 5xx for the whole request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import * as sm from '../index.js';

const p = new sm.Pseudonymizer('k1', Buffer.alloc(32, 2));
const TOKEN = 'smi_' + 'A'.repeat(43);

// intake starts a fake intake; answer(req, events, n) returns
// {status, headers?, body?} or undefined for "all accepted". It records
// every request's events.
async function intake(t, answer = () => undefined) {
  const requests = [];
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const events = body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    const r = { method: req.method, url: req.url, headers: req.headers, bytes: Buffer.byteLength(body), events };
    requests.push(r);
    const a = answer(r, requests.length) ?? {};
    if (a.destroy) return req.socket.destroy();
    const status = a.status ?? 202;
    const out =
      a.body ??
      (status === 202
        ? { results: events.map((e, index) => ({ index, id: e.id, status: a.statusOf?.(e) ?? 'accepted', ...(a.statusOf?.(e) === 'rejected' ? { error: 'subject: looks like an e-mail address', fields: ['subject'] } : {}) })) }
        : { error: `status ${status}` });
    res.writeHead(status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
    res.end(JSON.stringify(out));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

function newClient(url, opts = {}) {
  const errors = [];
  const client = new sm.Client({ url, token: TOKEN, app: 'shop', onError: (e) => errors.push(e), retryBaseMs: 20, retryMaxMs: 100, flushIntervalMs: 60000, ...opts });
  return { client, errors };
}

const activity = (i) => sm.sessionActivity({ subject: p.subject(`u${i}`), session: p.session(`s${i}`) });

test('flush posts NDJSON with the bearer token and counts results', async (t) => {
  const srv = await intake(t);
  const { client, errors } = newClient(srv.url);
  const ids = [0, 1, 2].map((i) => client.enqueue(activity(i)));
  const s = await client.flush();
  assert.deepEqual(s, { accepted: 3, duplicates: 0, rejected: 0, failed: 0, pending: 0 });
  assert.equal(srv.requests.length, 1);
  const r = srv.requests[0];
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/v1/events');
  assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(r.headers['content-type'], 'application/x-ndjson');
  assert.deepEqual(r.events.map((e) => e.id), ids);
  assert.ok(r.events.every((e) => e.app === 'shop'));
  assert.deepEqual(errors, []);
  await client.close();
});

test('batches hold at most 1000 events and 1 MiB', async (t) => {
  const srv = await intake(t);
  const { client } = newClient(srv.url);
  for (let i = 0; i < 2500; i++) client.enqueue(activity(i));
  // Events of about 4 KiB each: 1 MiB holds about 250 of them.
  const attrs = Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`k${k}`, 'v'.repeat(250)]));
  for (let i = 0; i < 600; i++) client.enqueue(sm.sessionActivity({ subject: p.subject('u'), session: p.session('s'), attrs }));
  const s = await client.close();
  assert.equal(s.accepted, 3100);
  assert.deepEqual(srv.requests.slice(0, 2).map((r) => r.events.length), [1000, 1000]);
  for (const r of srv.requests) {
    assert.ok(r.events.length <= 1000);
    assert.ok(r.bytes <= sm.MAX_BATCH_BYTES, `${r.bytes} bytes`);
  }
  assert.ok(
    srv.requests.some((r) => r.events.length < 1000 && r.bytes > sm.MAX_BATCH_BYTES - sm.MAX_EVENT_BYTES),
    'a batch was cut at 1 MiB',
  );
  assert.equal(new Set(srv.requests.flatMap((r) => r.events.map((e) => e.id))).size, 3100, 'each event sent once');
});

test('503 and 429 are retried after Retry-After with the same ids', async (t) => {
  const srv = await intake(t, (_r, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : n === 2 ? { status: 429, headers: { 'retry-after': '0' } } : undefined));
  const { client, errors } = newClient(srv.url, { retryBaseMs: 5000 });
  client.enqueue(activity(1));
  client.enqueue(activity(2));
  const start = Date.now();
  const s = await client.flush();
  const took = Date.now() - start;
  assert.equal(s.accepted, 2);
  assert.equal(srv.requests.length, 3);
  assert.ok(took >= 950, `waited ${took} ms, Retry-After said 1 s`);
  assert.ok(took < 4000, `waited ${took} ms: the 5 s backoff was used instead of Retry-After`);
  const ids = srv.requests.map((r) => r.events.map((e) => e.id).join());
  assert.equal(new Set(ids).size, 1, 'retries resend the same ids');
  assert.deepEqual(errors, []);
  await client.close();
});

test('5xx and network errors are retried with backoff, then given up', async (t) => {
  const srv = await intake(t, (_r, n) => (n === 1 ? { status: 500 } : n === 2 ? { destroy: true } : n === 3 ? { status: 502 } : undefined));
  const { client, errors } = newClient(srv.url);
  client.enqueue(activity(1));
  assert.equal((await client.flush()).accepted, 1);
  assert.equal(srv.requests.length, 4);
  assert.deepEqual(errors, []);
  await client.close();

  const down = await intake(t, () => ({ status: 500 }));
  const c2 = newClient(down.url, { retries: 3 });
  const id = c2.client.enqueue(activity(2));
  const s = await c2.client.close();
  assert.deepEqual(s, { accepted: 0, duplicates: 0, rejected: 0, failed: 1, pending: 0 });
  assert.equal(down.requests.length, 4, 'one try and three retries');
  assert.equal(c2.errors.length, 1);
  assert.equal(c2.errors[0].code, 'failed');
  assert.deepEqual(c2.errors[0].ids, [id]);
});

test('backoff grows exponentially with jitter', async (t) => {
  const times = [];
  const srv = await intake(t, () => {
    times.push(Date.now());
    return { status: 500 };
  });
  const { client } = newClient(srv.url, { retries: 4, retryBaseMs: 100, retryMaxMs: 10000 });
  client.enqueue(activity(1));
  await client.close();
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  // Waits are within [d/2, d] for d = 100, 200, 400, 800 ms (plus slack
  // for a busy machine), so the last is longer than the first.
  assert.ok(gaps[3] > gaps[0]);
  [100, 200, 400, 800].forEach((d, i) => {
    assert.ok(gaps[i] >= d / 2 - 5 && gaps[i] <= d + 500, `gap ${i}: ${gaps[i]} ms for d=${d}`);
  });
});

test('rejected events go to onError naming the field and are not retried', async (t) => {
  const bad = p.subject('bad');
  const srv = await intake(t, () => ({ statusOf: (e) => (e.subject === bad ? 'rejected' : e.subject === p.subject('dup') ? 'duplicate' : 'accepted') }));
  const { client, errors } = newClient(srv.url);
  client.enqueue(activity(1));
  const badId = client.enqueue(sm.loginSucceeded({ subject: bad }));
  client.enqueue(sm.loginSucceeded({ subject: p.subject('dup') }));
  const s = await client.close();
  assert.deepEqual(s, { accepted: 1, duplicates: 1, rejected: 1, failed: 0, pending: 0 });
  assert.equal(srv.requests.length, 1);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'rejected');
  assert.equal(errors[0].field, 'subject');
  assert.deepEqual(errors[0].ids, [badId]);
});

test('401 goes to onError and is not retried', async (t) => {
  const srv = await intake(t, () => ({ status: 401 }));
  const { client, errors } = newClient(srv.url);
  client.enqueue(activity(1));
  client.enqueue(activity(2));
  const s = await client.close();
  assert.equal(s.failed, 2);
  assert.equal(srv.requests.length, 1);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'unauthorized');
  assert.equal(errors[0].status, 401);
  assert.equal(errors[0].ids.length, 2);
});

test('413 splits the batch and resends', async (t) => {
  const srv = await intake(t, (r) => (r.events.length > 2 ? { status: 413 } : undefined));
  const { client, errors } = newClient(srv.url);
  for (let i = 0; i < 7; i++) client.enqueue(activity(i));
  const s = await client.close();
  assert.equal(s.accepted, 7);
  assert.deepEqual(errors, []);
  const stored = srv.requests.filter((r) => r.events.length <= 2).flatMap((r) => r.events.map((e) => e.id));
  assert.equal(new Set(stored).size, 7);
});

test('a full buffer reports overflow, never silently', async (t) => {
  const srv = await intake(t);
  const { client, errors } = newClient(srv.url, { maxBuffer: 3 });
  const ids = [0, 1, 2, 3, 4].map((i) => client.enqueue(activity(i)));
  assert.equal(ids[3], undefined);
  assert.equal(ids[4], undefined);
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e.code === 'overflow'));
  const s = await client.close();
  assert.deepEqual(s, { accepted: 3, duplicates: 0, rejected: 0, failed: 2, pending: 0 });
});

test('the background timer sends without flush', async (t) => {
  const srv = await intake(t);
  const { client } = newClient(srv.url, { flushIntervalMs: 20 });
  client.enqueue(activity(1));
  for (let i = 0; i < 100 && srv.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(srv.requests.length, 1);
  await client.close();
});

test('close sends what is buffered, then refuses events; its timeout stops retries', async (t) => {
  const srv = await intake(t);
  const { client, errors } = newClient(srv.url);
  client.enqueue(activity(1));
  assert.equal((await client.close()).accepted, 1);
  assert.equal(client.enqueue(activity(2)), undefined);
  assert.equal(errors.at(-1).code, 'closed');
  assert.equal(client.stats().failed, 1);

  const busy = await intake(t, () => ({ status: 503, headers: { 'retry-after': '60' } }));
  const c2 = newClient(busy.url);
  c2.client.enqueue(activity(3));
  const start = Date.now();
  const s = await c2.client.close({ timeoutMs: 300 });
  assert.ok(Date.now() - start < 2000);
  assert.equal(s.failed, 1);
  assert.equal(c2.errors[0].code, 'timeout');
});

test('enqueue validates and fills the app', async (t) => {
  const srv = await intake(t);
  const { client } = newClient(srv.url);
  assert.throws(() => client.enqueue({ ...activity(1), session: undefined }), (e) => e instanceof sm.ValidationError && e.field === 'session');
  assert.throws(() => client.enqueue(sm.loginSucceeded({ app: 'other', subject: p.subject('u') })), (e) => e.field === 'app');
  assert.throws(() => client.report('token.used', { subject: p.subject('u') }), (e) => e.field === 'token.id');
  const id = client.report('login.failed', { subject: p.subject('u'), reason: 'bad_password' });
  await client.close();
  assert.equal(srv.requests[0].events[0].id, id);
  assert.equal(srv.requests[0].events[0].app, 'shop');
});

test('options are checked', () => {
  assert.throws(() => new sm.Client({ url: 'http://sessionmon.example.com', token: TOKEN, app: 'shop' }), /https/);
  assert.throws(() => new sm.Client({ url: 'https://x', token: 'a b', app: 'shop' }), /token/);
  assert.throws(() => new sm.Client({ url: 'https://x', token: TOKEN, app: 'my shop' }), /app/);
  assert.throws(() => new sm.Client({ url: 'https://x', token: TOKEN, app: 'shop', batchSize: 5000 }), /batchSize/);
  assert.throws(() => new sm.Client({ url: 'https://x', token: TOKEN, app: 'shop', flushEvery: 1 }), /unknown option/);
  const c = new sm.Client({ url: 'http://sessionmon:8080', token: TOKEN, app: 'shop', allowInsecureHttp: true });
  return c.close();
});
