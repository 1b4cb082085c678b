// Known-answer tests shared by every sessionmon SDK: this SDK must give the
// Go SDK's pseudonyms, prefixes and client addresses byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Pseudonymizer, RequestInspector, KeyError, addressPrefix, cutPrefix } from '../index.js';

const vectors = JSON.parse(readFileSync(new URL('../../../schemas/testdata/vectors.json', import.meta.url), 'utf8'));
const key = (hex) => Buffer.from(hex, 'hex');
const method = { subject: 'subject', session: 'session', device: 'device', token: 'tokenId' };

test('pseudonyms', () => {
  assert.ok(vectors.pseudonyms.length > 0);
  for (const v of vectors.pseudonyms) {
    const p = new Pseudonymizer(v.key_id, key(v.key_hex));
    assert.equal(p[method[v.kind]](v.input), v.expected, `${v.kind} ${JSON.stringify(v.input)} under ${v.key_id}`);
  }
});

test('ip hashes and prefixes', () => {
  assert.ok(vectors.ip.length > 0);
  for (const v of vectors.ip) {
    const p = new Pseudonymizer(v.key_id, key(v.key_hex));
    assert.equal(p.ipHash(v.address), v.hash, `hash of ${JSON.stringify(v.address)}`);
    assert.equal(addressPrefix(v.address), v.prefix, `prefix of ${JSON.stringify(v.address)}`);
  }
});

test('app-set prefixes are cut', () => {
  assert.ok(vectors.prefixes.length > 0);
  for (const v of vectors.prefixes) {
    assert.equal(cutPrefix(v.input), v.expected, `cut ${JSON.stringify(v.input)}`);
  }
});

test('client addresses', () => {
  assert.ok(vectors.client_addresses.length > 0);
  const p = new Pseudonymizer('k1', Buffer.alloc(32));
  for (const v of vectors.client_addresses) {
    const ri = new RequestInspector(p, v.trusted_proxies);
    const name = `${v.remote_addr} ${JSON.stringify(v.x_forwarded_for)} trusting ${JSON.stringify(v.trusted_proxies)}`;
    assert.equal(ri.clientAddrFrom(v.remote_addr, v.x_forwarded_for), v.client, name);
    // The same through a request, as Node delivers it: repeated header
    // lines joined with ", ".
    const req = {
      socket: { remoteAddress: v.remote_addr },
      headers: v.x_forwarded_for.length ? { 'x-forwarded-for': v.x_forwarded_for.join(', ') } : {},
    };
    assert.equal(ri.clientAddr(req), v.client, `${name} (request)`);
  }
});

test('bad keys are refused', () => {
  assert.ok(vectors.bad_keys.length > 0);
  for (const v of vectors.bad_keys) {
    assert.throws(() => new Pseudonymizer(v.key_id, key(v.key_hex)), KeyError, v.why ?? v.key_id);
  }
});

test('numeric ids are pseudonymized in decimal form', () => {
  const p = new Pseudonymizer('k1', Buffer.alloc(32, 9));
  assert.equal(p.subject(42), p.subject('42'));
  assert.equal(p.session(12345678901234567890n), p.session('12345678901234567890'));
  assert.equal(p.subject(undefined), '');
  assert.equal(p.subject(''), '');
  assert.throws(() => p.subject({ id: 1 }), TypeError);
});
