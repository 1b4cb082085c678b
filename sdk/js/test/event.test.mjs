import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as sm from '../index.js';

const p = new sm.Pseudonymizer('k1', Buffer.alloc(32, 1));
const subject = p.subject('user-42');
const session = p.session('sess-1');
const tok = p.tokenId('jti-1');

const ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('newEventId: 26 Crockford characters, time first, unique', () => {
  const at = Date.UTC(2026, 11, 7, 13, 54, 32, 123);
  const a = sm.newEventId(at);
  const b = sm.newEventId(at);
  assert.match(a, ID);
  assert.notEqual(a, b);
  assert.equal(a.slice(0, 9), b.slice(0, 9), 'the first 48 bits are the time');
  // Decode the first 10 characters (50 bits) back to milliseconds.
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let v = 0n;
  for (const c of a.slice(0, 10)) v = v * 32n + BigInt(alphabet.indexOf(c));
  assert.equal(Number(v >> 2n), at);
  assert.ok(sm.newEventId(at + 1) > a, 'ids sort by time');
});

test('builders: one per type, with the wire basics', () => {
  const extra = {
    'session.started': { session },
    'session.activity': { session },
    'session.ended': { session },
    'token.issued': { token: { id: tok } },
    'token.refreshed': { token: { id: tok } },
    'token.used': { token: { id: tok } },
    'token.revoked': { token: { id: tok } },
    'action.performed': { action: { name: 'change_email' } },
    'key.retired': { key: { kid: '2026-11-signing' } },
  };
  const builders = {
    'login.succeeded': sm.loginSucceeded,
    'login.failed': sm.loginFailed,
    'session.started': sm.sessionStarted,
    'session.activity': sm.sessionActivity,
    'session.ended': sm.sessionEnded,
    'token.issued': sm.tokenIssued,
    'token.refreshed': sm.tokenRefreshed,
    'token.used': sm.tokenUsed,
    'token.revoked': sm.tokenRevoked,
    'reauth.succeeded': sm.reauthSucceeded,
    'action.performed': sm.actionPerformed,
    'key.retired': sm.keyRetired,
  };
  assert.deepEqual(Object.keys(builders).sort(), [...sm.TYPES].sort());
  for (const [type, build] of Object.entries(builders)) {
    const ev = build({ app: 'shop', subject, ...extra[type] });
    assert.equal(ev.type, type);
    assert.equal(ev.schema_version, 1);
    assert.equal(ev.app, 'shop');
    assert.equal(ev.subject, subject);
    assert.match(ev.id, ID);
    assert.match(ev.time, TIME);
    assert.ok(Math.abs(Date.parse(ev.time) - Date.now()) < 5000);
  }
});

test('buildEvent: full event, times, prefix cut, empty fields left out', () => {
  const ev = sm.buildEvent('session.started', {
    id: 'evt-1',
    time: new Date(Date.UTC(2026, 10, 25, 10, 0, 0, 5)),
    app: 'shop',
    subject,
    session,
    previous_session: p.session('pre-login'),
    reason: '',
    client: { device: p.device('dev-1'), ip_prefix: '203.0.113.77/32', ip_hash: p.ipHash('203.0.113.77'), country: 'DE', lat: 48.1, lon: 11.5, user_agent: 'x'.repeat(600) },
    token: { id: tok, kind: 'access', issued_at: Date.UTC(2026, 10, 25, 10), expires_at: '2026-11-25T11:00:00Z', claims: ['sub', 'exp'], kid: '' },
    auth: { method: 'password', mfa: true, last_auth_at: Date.UTC(2026, 10, 25, 9, 59) },
    cookie: { name: 'sid', secure: false, http_only: true, same_site: 'lax' },
    policy: { idle_timeout_s: 1800 },
    attrs: { plan: 'pro' },
  });
  assert.equal(ev.id, 'evt-1');
  assert.equal(ev.time, '2026-11-25T10:00:00.005Z');
  assert.equal(ev.client.ip_prefix, '203.0.113.0/24');
  assert.equal(ev.client.user_agent.length, 512);
  assert.equal(ev.token.issued_at, '2026-11-25T10:00:00.000Z');
  assert.equal(ev.token.expires_at, '2026-11-25T11:00:00.000Z');
  assert.equal(ev.auth.last_auth_at, '2026-11-25T09:59:00.000Z');
  assert.ok(!('reason' in ev) && !('kid' in ev.token), 'empty optional strings are left out');
  assert.deepEqual(ev.cookie, { name: 'sid', secure: false, http_only: true, same_site: 'lax' });
  // The result is plain JSON that validates again unchanged.
  assert.deepEqual(sm.validateEvent(JSON.parse(JSON.stringify(ev))), ev);
});

test('buildEvent: IPv6 prefixes cut to /48, mapped IPv4 to /24', () => {
  const v6 = sm.buildEvent('login.succeeded', { app: 'shop', subject, client: { ip_prefix: '2001:db8:1:2::/64' } });
  assert.equal(v6.client.ip_prefix, '2001:db8:1::/48');
  const mapped = sm.buildEvent('login.succeeded', { app: 'shop', subject, client: { ip_prefix: '::ffff:192.0.2.0/120' } });
  assert.equal(mapped.client.ip_prefix, '192.0.2.0/24');
});

test('buildEvent: personal-looking user agent and kid are left out', () => {
  const ev = sm.buildEvent('token.used', {
    app: 'shop',
    subject,
    client: { user_agent: 'curl/8.0 (alice@example.com)' },
    token: { id: tok, kid: '203.0.113.7' },
  });
  assert.ok(!('user_agent' in ev.client));
  assert.ok(!('kid' in ev.token));
  const ok = sm.buildEvent('login.succeeded', { app: 'shop', subject, client: { user_agent: 'Mozilla/5.0 Chrome/120.0.6099.109 Safari/537.36' } });
  assert.equal(ok.client.user_agent, 'Mozilla/5.0 Chrome/120.0.6099.109 Safari/537.36');
});

test('buildEvent: errors name the field', () => {
  const cases = [
    { name: 'unknown type', type: 'login.maybe', fields: { subject }, field: 'type' },
    { name: 'no subject', type: 'login.succeeded', fields: {}, field: 'subject' },
    { name: 'raw subject', type: 'login.succeeded', fields: { subject: 'alice@example.com' }, field: 'subject' },
    { name: 'raw user id', type: 'login.succeeded', fields: { subject: 'user-12345678' }, field: 'subject' },
    { name: 'session.activity without session', type: 'session.activity', fields: { subject }, field: 'session' },
    { name: 'session.ended with raw session', type: 'session.ended', fields: { subject, session: 'abc' }, field: 'session' },
    { name: 'token.revoked without token', type: 'token.revoked', fields: { subject }, field: 'token.id' },
    { name: 'token.used with raw jti', type: 'token.used', fields: { subject, token: { id: 'jti-1234567' } }, field: 'token.id' },
    { name: 'action.performed without name', type: 'action.performed', fields: { subject, action: {} }, field: 'action.name' },
    { name: 'key.retired without kid', type: 'key.retired', fields: { subject }, field: 'key.kid' },
    { name: 'previous_session on login', type: 'login.succeeded', fields: { subject, previous_session: session }, field: 'previous_session' },
    { name: 'unknown field', type: 'login.succeeded', fields: { subject, previousSession: session }, field: 'previousSession' },
    { name: 'unknown client field', type: 'login.succeeded', fields: { subject, client: { ip: '203.0.113.7' } }, field: 'client.ip' },
    { name: 'bad prefix', type: 'login.succeeded', fields: { subject, client: { ip_prefix: '203.0.113.7' } }, field: 'client.ip_prefix' },
    { name: 'country', type: 'login.succeeded', fields: { subject, client: { country: 'de' } }, field: 'client.country' },
    { name: 'lat without lon', type: 'login.succeeded', fields: { subject, client: { lat: 1 } }, field: 'client.lon' },
    { name: 'token kind', type: 'token.issued', fields: { subject, token: { id: tok, kind: 'jwt' } }, field: 'token.kind' },
    { name: 'claim value', type: 'token.issued', fields: { subject, token: { id: tok, claims: ['sub=alice'] } }, field: 'token.claims[0]' },
    { name: 'same_site', type: 'session.started', fields: { subject, session, cookie: { same_site: 'Lax' } }, field: 'cookie.same_site' },
    { name: 'policy fraction', type: 'session.started', fields: { subject, session, policy: { idle_timeout_s: 1.5 } }, field: 'policy.idle_timeout_s' },
    { name: 'bad time', type: 'login.succeeded', fields: { subject, time: 'yesterday' }, field: 'time' },
    { name: 'bad app', type: 'login.succeeded', fields: { subject, app: 'my shop' }, field: 'app' },
    { name: 'reason too long', type: 'login.failed', fields: { subject, reason: 'r'.repeat(257) }, field: 'reason' },
    { name: 'attr value', type: 'login.succeeded', fields: { subject, attrs: { plan: 3 } }, field: 'attrs.plan' },
  ];
  for (const c of cases) {
    assert.throws(
      () => sm.buildEvent(c.type, c.fields),
      (err) => err instanceof sm.ValidationError && err.field === c.field && err.message.startsWith(c.field + ':'),
      c.name,
    );
  }
});

test('validateEvent: the schema fixtures SDK-made events look like', () => {
  // Fixtures whose pseudonyms come from a Pseudonymizer validate; the
  // others (ids like "sub_9f86...") are refused as not made by one.
  const dir = new URL('../../../schemas/testdata/valid/', import.meta.url);
  for (const f of readdirSync(dir)) {
    const ev = JSON.parse(readFileSync(new URL(f, dir), 'utf8'));
    assert.throws(() => sm.validateEvent(ev), (err) => err instanceof sm.ValidationError, f);
    const mapped = JSON.parse(JSON.stringify(ev), (k, v) => (typeof v === 'string' && /^(sub|ses|dev|iph|jti|fam|svc)_/.test(v) ? p.subject(v) : v));
    if (!/boundary|empty_optional|json_escapes/.test(f)) {
      try {
        sm.validateEvent(mapped);
      } catch (err) {
        assert.fail(`${f}: ${err.message}`);
      }
    }
  }
});
