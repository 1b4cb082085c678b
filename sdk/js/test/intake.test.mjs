// End-to-end test against a running sessionmon intake. It runs only when
// SESSIONMON_INTAKE_URL and SESSIONMON_INTAKE_TOKEN are set (sessionmon's
// own Go tests start `sessionmon serve` and run this file with them, plus
// SESSIONMON_APP, the token's app, and SESSIONMON_EVENTS_OUT, where the ids
// of the stored events are written one a line).
//
// A small Express app uses the middleware and helpers; real HTTP requests
// drive a failed and a successful login (whose session cookie is set
// without Secure, which sessionmon's insecure_cookie detector flags), a
// request on the session and a logout. Then bad input goes straight to the
// intake to check its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as sm from '../index.js';

const URL_ = process.env.SESSIONMON_INTAKE_URL;
const TOKEN = process.env.SESSIONMON_INTAKE_TOKEN;
const APP = process.env.SESSIONMON_APP || 'shop';
const OUT = process.env.SESSIONMON_EVENTS_OUT;
const skip = URL_ && TOKEN ? false : 'set SESSIONMON_INTAKE_URL and SESSIONMON_INTAKE_TOKEN (and SESSIONMON_APP) to run against a real intake';

const p = new sm.Pseudonymizer('e2e', randomBytes(32));
const stored = []; // ids of the events the intake stored, in send order

// Records every event the SDK enqueues.
class RecordingClient extends sm.Client {
  sent = [];
  enqueue(ev) {
    const id = super.enqueue(ev);
    if (id) this.sent.push({ ...ev, id });
    return id;
  }
}

async function startApp(t, mw) {
  const { default: express } = await import('express');
  const sessions = new Map(); // sid -> user id; anonymous sessions map to ""
  const users = new Map([['alice', { id: 'user-' + randomBytes(4).toString('hex'), password: 'correct horse' }]]);
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    const m = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '');
    if (m && sessions.has(m[1])) req.sid = m[1];
    req.userId = req.sid ? sessions.get(req.sid) || undefined : undefined;
    next();
  });
  app.use(mw);
  const cookie = { httpOnly: true, sameSite: 'lax' }; // deliberately without Secure
  app.get('/', (req, res) => {
    if (!req.sid) {
      const sid = randomBytes(16).toString('base64url');
      sessions.set(sid, '');
      res.cookie('sid', sid, cookie);
    }
    res.send('home');
  });
  app.post('/login', (req, res) => {
    const u = users.get(req.body.user);
    if (!u || u.password !== req.body.password) {
      mw.loginFailed(req, { subject: req.body.user, reason: 'bad_password' });
      return res.status(401).send('no');
    }
    const sid = randomBytes(16).toString('base64url');
    const previous = req.sid;
    sessions.delete(previous);
    sessions.set(sid, u.id);
    res.cookie('sid', sid, cookie);
    mw.login(req, {
      subject: u.id,
      session: sid,
      previousSession: previous,
      auth: { method: 'password', mfa: false },
      cookie: { name: 'sid', secure: false, http_only: true, same_site: 'lax' },
      policy: { idle_timeout_s: 1800, absolute_timeout_s: 43200 },
    });
    res.send('welcome');
  });
  app.get('/account', (req, res) => (req.userId ? res.send('account') : res.status(401).send('sign in')));
  app.post('/logout', (req, res) => {
    if (req.userId) {
      mw.logout(req);
      sessions.delete(req.sid);
    }
    res.clearCookie('sid').send('bye');
  });
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

// post sends body straight to the intake.
async function post(body, { token = TOKEN, type = 'application/x-ndjson' } = {}) {
  const res = await fetch(URL_.replace(/\/+$/, '') + '/v1/events', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': type },
    body,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    assert.fail(`intake answered ${res.status} with a body that is not JSON`);
  }
  return { status: res.status, body: json };
}

const goodEvent = () => sm.loginSucceeded({ app: APP, subject: p.subject('direct-user'), client: { ip_prefix: '203.0.113.0/24' } });
const ndjson = (...events) => events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)) + '\n').join('');

test('intake end to end', { skip }, async (t) => {
  await t.test('an Express app reports a login, activity and a logout', async (t) => {
    const errors = [];
    const client = new RecordingClient({ url: URL_, token: TOKEN, app: APP, onError: (e) => errors.push(e), flushIntervalMs: 200 });
    const mw = sm.middleware({
      client,
      inspector: new sm.RequestInspector(p, []),
      pseudonymizer: p,
      subject: (req) => req.userId,
      session: (req) => req.sid,
      activityIntervalMs: 60000,
    });
    const base = await startApp(t, mw);
    let cookie = '';
    const request = async (method, path, body) => {
      const res = await fetch(base + path, {
        method,
        headers: { cookie, 'content-type': 'application/json', 'user-agent': 'sessionmon-js-e2e/1.0' },
        body: body && JSON.stringify(body),
      });
      const set = res.headers.get('set-cookie');
      if (set) {
        assert.ok(!/;\s*secure/i.test(set), 'the session cookie is set without Secure');
        cookie = set.split(';')[0];
      }
      return res.status;
    };
    assert.equal(await request('GET', '/'), 200);
    assert.equal(await request('POST', '/login', { user: 'alice', password: 'wrong' }), 401);
    assert.equal(await request('POST', '/login', { user: 'alice', password: 'correct horse' }), 200);
    assert.equal(await request('GET', '/account'), 200);
    assert.equal(await request('POST', '/logout'), 200);

    const s = await client.close();
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.deepEqual(
      client.sent.map((e) => e.type),
      ['login.failed', 'login.succeeded', 'session.started', 'session.activity', 'session.ended'],
    );
    const started = client.sent[2];
    assert.deepEqual(started.cookie, { name: 'sid', secure: false, http_only: true, same_site: 'lax' });
    assert.ok(started.previous_session, 'the pre-login session is linked');
    assert.equal(client.sent[3].session, started.session);
    assert.equal(client.sent[4].session, started.session);
    assert.deepEqual(s, { accepted: 5, duplicates: 0, rejected: 0, failed: 0, pending: 0 });
    stored.push(...client.sent.map((e) => e.id));
  });

  await t.test('a raw e-mail in subject is rejected, the good event next to it kept', async () => {
    const good = goodEvent();
    const bad = { ...goodEvent(), subject: 'alice@example.com' };
    const { status, body } = await post(ndjson(good, bad));
    assert.equal(status, 202);
    assert.equal(body.results.length, 2);
    assert.equal(body.results[0].status, 'accepted');
    assert.equal(body.results[1].status, 'rejected');
    assert.ok(body.results[1].fields.includes('subject'), JSON.stringify(body.results[1]));
    assert.ok(!JSON.stringify(body).includes('alice@example.com'), 'the error does not quote the address');
    assert.equal(body.accepted, 1);
    assert.equal(body.rejected, 1);
    stored.push(good.id);
  });

  await t.test('an event of another app is rejected naming app', async () => {
    const other = APP === 'someotherapp' ? 'yetanotherapp' : 'someotherapp';
    const { status, body } = await post(ndjson({ ...goodEvent(), app: other }));
    assert.equal(status, 202);
    assert.equal(body.results[0].status, 'rejected');
    assert.ok(body.results[0].fields.includes('app'), JSON.stringify(body.results[0]));
  });

  await t.test('a malformed JSON line is rejected', async () => {
    const { status, body } = await post(ndjson('{"id": "x", "type": '));
    assert.equal(status, 202);
    assert.equal(body.results.length, 1);
    assert.equal(body.results[0].status, 'rejected');
    assert.equal(body.accepted, 0);
  });

  await t.test('a body over 1 MiB is refused with 413', async () => {
    const attrs = Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`k${k}`, 'v'.repeat(200)]));
    const events = Array.from({ length: 400 }, () => ({ ...goodEvent(), id: sm.newEventId(), attrs }));
    const body = ndjson(...events);
    assert.ok(Buffer.byteLength(body) > sm.MAX_BATCH_BYTES);
    const res = await post(body);
    assert.equal(res.status, 413);
    assert.equal(typeof res.body.error, 'string');
  });

  await t.test('a bad token is refused with 401, also through the Client', async () => {
    const bad = 'smi_' + randomBytes(32).toString('base64url');
    const res = await post(ndjson(goodEvent()), { token: bad });
    assert.equal(res.status, 401);
    assert.equal(typeof res.body.error, 'string');

    const errors = [];
    const client = new sm.Client({ url: URL_, token: bad, app: APP, onError: (e) => errors.push(e) });
    const id = client.enqueue(goodEvent());
    const s = await client.close();
    assert.equal(s.failed, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'unauthorized');
    assert.equal(errors[0].status, 401);
    assert.deepEqual(errors[0].ids, [id]);
  });

  if (OUT) writeFileSync(OUT, stored.map((id) => id + '\n').join(''));
});
