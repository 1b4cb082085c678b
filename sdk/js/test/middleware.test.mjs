// The middleware and helpers on a plain node:http server (Connect-style
// (req, res, next)), reporting to a fake intake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import * as sm from '../index.js';

const p = new sm.Pseudonymizer('k1', Buffer.alloc(32, 3));
const inspector = new sm.RequestInspector(p, ['127.0.0.0/8']);

async function listen(t, handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

// setup starts a fake intake and an app whose requests carry the raw user
// id in "x-user" and the raw session id in "x-session"; route(req, sm)
// runs after the middleware.
async function setup(t, opts = {}, route = () => {}) {
  const bodies = [];
  const intakeURL = await listen(t, async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    bodies.push(body);
    const events = body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ results: events.map((e, index) => ({ index, id: e.id, status: 'accepted' })) }));
  });
  const client = new sm.Client({ url: intakeURL, token: 'smi_test', app: 'shop', flushIntervalMs: 60000 });
  const mw = sm.middleware({
    client,
    inspector,
    pseudonymizer: p,
    subject: (req) => req.headers['x-user'],
    session: (req) => req.headers['x-session'],
    device: (req) => req.headers['x-device'],
    ...opts,
  });
  const appURL = await listen(t, (req, res) =>
    mw(req, res, () => {
      route(req, mw);
      res.end('ok');
    }),
  );
  const get = (path, headers = {}) => fetch(appURL + path, { headers: { 'x-forwarded-for': '198.51.100.23', 'user-agent': 'test-agent/1.0', ...headers } }).then((r) => r.text());
  const sent = async () => {
    await client.flush();
    const all = bodies.join('');
    return { raw: all, events: all.split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
  };
  t.after(() => client.close());
  return { get, sent, client, mw };
}

test('session.activity once per session and interval', async (t) => {
  const { get, sent } = await setup(t);
  await get('/');
  for (let i = 0; i < 3; i++) await get('/', { 'x-user': 'user-1', 'x-session': 'raw-session-1', 'x-device': 'dev-1' });
  await get('/', { 'x-user': 'user-2', 'x-session': 'raw-session-2' });
  const { raw, events } = await sent();
  assert.deepEqual(events.map((e) => [e.type, e.session]), [
    ['session.activity', p.session('raw-session-1')],
    ['session.activity', p.session('raw-session-2')],
  ]);
  const e = events[0];
  assert.equal(e.subject, p.subject('user-1'));
  assert.deepEqual(e.client, {
    ip_prefix: '198.51.100.0/24',
    ip_hash: p.ipHash('198.51.100.23'),
    user_agent: 'test-agent/1.0',
    device: p.device('dev-1'),
  });
  for (const secret of ['user-1', 'raw-session-1', 'dev-1', '198.51.100.23']) assert.ok(!raw.includes(secret), `${secret} was sent`);
});

test('activity interval and bounded session map', async (t) => {
  const { get, sent } = await setup(t, { activityIntervalMs: 50, maxSessions: 2 });
  const on = (s) => get('/', { 'x-user': 'u', 'x-session': s });
  await on('a');
  await on('a'); // throttled
  await new Promise((r) => setTimeout(r, 60));
  await on('a'); // interval passed
  await on('b');
  await on('c'); // evicts a, the oldest
  await on('a'); // reported again
  const { events } = await sent();
  assert.deepEqual(events.map((e) => e.session), ['a', 'a', 'b', 'c', 'a'].map((s) => p.session(s)));
});

test('helpers pseudonymize raw ids and report each event type', async (t) => {
  const { get, sent } = await setup(t, {}, (req, mw) => {
    switch (req.url) {
      case '/login':
        mw.loginFailed(req, { subject: 'alice', reason: 'bad_password' });
        mw.login(req, {
          subject: 'user-1',
          session: 'new-session',
          previousSession: 'pre-login-session',
          auth: { method: 'password', mfa: false },
          cookie: { name: 'sid', secure: false, http_only: true, same_site: 'lax' },
          policy: { idle_timeout_s: 1800 },
        });
        break;
      case '/token':
        mw.tokenIssued(req, { token: { id: 'raw-jwt-1', kind: 'access', claims: ['sub'] } });
        mw.tokenRefreshed(req, { token: { id: 'raw-jwt-2', parent: 'raw-jwt-1', family: 'raw-jwt-1', kind: 'refresh' } });
        mw.tokenUsed(req, { token: { id: 'raw-jwt-2' } });
        mw.tokenRevoked(req, { token: { id: 'raw-jwt-2' }, reason: 'logout' });
        mw.reauth(req, { auth: { method: 'totp', mfa: true } });
        mw.action(req, { action: { name: 'change_email', sensitive: true } });
        mw.sessionStarted(req, { session: 'other-session' });
        break;
      case '/logout':
        mw.logout(req);
        break;
    }
  });
  await get('/login', { 'x-session': 'pre-login-session' });
  const signedIn = { 'x-user': 'user-1', 'x-session': 'new-session' };
  await get('/token', signedIn);
  await get('/logout', signedIn);
  await get('/', signedIn); // after logout the session is forgotten: activity again
  const { raw, events } = await sent();
  assert.deepEqual(events.map((e) => e.type), [
    'login.failed',
    'login.succeeded',
    'session.started',
    'session.activity',
    'token.issued',
    'token.refreshed',
    'token.used',
    'token.revoked',
    'reauth.succeeded',
    'action.performed',
    'session.started',
    'session.ended',
    'session.activity',
  ]);
  const [failed, ok, started] = events;
  assert.equal(failed.subject, p.subject('alice'));
  assert.equal(failed.reason, 'bad_password');
  assert.equal(ok.session, p.session('new-session'));
  assert.deepEqual(ok.auth, { method: 'password', mfa: false });
  assert.equal(started.previous_session, p.session('pre-login-session'));
  assert.deepEqual(started.cookie, { name: 'sid', secure: false, http_only: true, same_site: 'lax' });
  assert.deepEqual(started.policy, { idle_timeout_s: 1800 });
  const refreshed = events[5];
  assert.deepEqual(refreshed.token, { id: p.tokenId('raw-jwt-2'), kind: 'refresh', family: p.tokenId('raw-jwt-1'), parent: p.tokenId('raw-jwt-1') });
  assert.equal(events[11].reason, 'logout');
  assert.equal(events[11].session, p.session('new-session'));
  for (const e of events.slice(3)) assert.equal(e.subject, p.subject('user-1'));
  for (const secret of ['alice', 'user-1', 'new-session', 'pre-login-session', 'raw-jwt', '198.51.100.23']) {
    assert.ok(!raw.includes(secret), `${secret} was sent`);
  }
});

test('helpers throw on missing ids; the middleware never breaks a request', async (t) => {
  let thrown;
  const subject = (req) => {
    if (req.headers['x-boom']) throw new Error('user store down');
    return req.headers['x-user'];
  };
  const { get, sent } = await setup(t, { subject }, (req, mw) => {
    if (req.url !== '/fail') return;
    try {
      mw.loginFailed(req, {});
    } catch (err) {
      thrown = err;
    }
  });
  assert.equal(await get('/', { 'x-session': 's', 'x-boom': '1' }), 'ok');
  await get('/fail');
  assert.equal(thrown.field, 'subject');
  assert.deepEqual((await sent()).events, []);
});
