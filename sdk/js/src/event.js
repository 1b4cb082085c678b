import { randomFillSync } from 'node:crypto';
import { cutPrefix } from './ip.js';
import { PSEUDONYM_PATTERN } from './pseudonym.js';
import { MAX_USER_AGENT_CHARS, truncateChars } from './request.js';

/** SCHEMA_VERSION is the version of the event wire format this SDK writes. */
export const SCHEMA_VERSION = 1;

/** TYPES lists every event type of schema v1. */
export const TYPES = Object.freeze([
  'login.succeeded',
  'login.failed',
  'session.started',
  'session.activity',
  'session.ended',
  'token.issued',
  'token.refreshed',
  'token.used',
  'token.revoked',
  'reauth.succeeded',
  'action.performed',
  'key.retired',
]);

/** MAX_EVENT_BYTES is the largest event, as UTF-8 JSON, the intake takes. */
export const MAX_EVENT_BYTES = 16384;

/**
 * ValidationError rejects an event before it is sent. field names the
 * offending field as a JSON path ("subject", "client.country"); the message
 * never quotes the value.
 */
export class ValidationError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.name = 'ValidationError';
    this.field = field;
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * newEventId returns a new unique event id: 26 characters of Crockford
 * base32 encoding 48 bits of Unix milliseconds and 80 random bits, so ids
 * sort roughly by creation time (as the Go SDK's NewEventID).
 */
export function newEventId(now = Date.now()) {
  const b = new Uint8Array(16);
  let ms = Math.floor(now);
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  randomFillSync(b, 6, 10);
  let out = '';
  let acc = 0;
  let n = 0;
  for (const byte of b) {
    acc = ((acc << 8) | byte) & 0xffff;
    n += 8;
    while (n >= 5) {
      n -= 5;
      out += CROCKFORD[(acc >> n) & 31];
    }
  }
  if (n > 0) out += CROCKFORD[(acc << (5 - n)) & 31];
  return out;
}

/**
 * formatTime writes a Date, a Unix millisecond number or a date string as
 * RFC 3339 UTC with milliseconds ("2026-12-07T13:54:32.123Z").
 */
export function formatTime(t, field = 'time') {
  const d = t instanceof Date ? t : new Date(t);
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new ValidationError(field, 'is not a valid time');
  const s = d.toISOString();
  if (s.length !== 24) throw new ValidationError(field, 'is outside years 0000-9999');
  return s;
}

// looksPersonal is a light local stand-in for sessionmon's personal-data
// guard, for the free-text fields the SDK copies from what end users
// control (user agent, token kid): e-mail addresses, IPv4 host addresses
// (a product version after "/" excepted), JWTs and bearer tokens.
function looksPersonal(s) {
  if (s.includes('@')) return true;
  if (/(^|[^/0-9.])\d{1,3}(\.\d{1,3}){3}(?![0-9.])/.test(s)) return true;
  if (/eyJ[A-Za-z0-9_-]{8,}\./.test(s)) return true;
  return /bearer\s+\S/i.test(s);
}

const TIME = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3,9}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$/;
const ID = /^[A-Za-z0-9_:.~-]{1,64}$/;
const APP = /^[A-Za-z0-9_-]{1,64}$/;
const CLAIM = /^[A-Za-z0-9_:./-]{1,64}$/;
const ATTR_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

const FIELDS = {
  top: ['id', 'schema_version', 'type', 'time', 'app', 'subject', 'session', 'previous_session', 'reason', 'client', 'token', 'auth', 'cookie', 'policy', 'action', 'key', 'attrs'],
  client: ['device', 'ip_prefix', 'ip_hash', 'asn', 'country', 'city', 'lat', 'lon', 'accuracy_km', 'user_agent'],
  token: ['id', 'kind', 'family', 'parent', 'issued_at', 'expires_at', 'kid', 'alg', 'claims'],
  auth: ['method', 'mfa', 'last_auth_at'],
  cookie: ['name', 'secure', 'http_only', 'same_site'],
  policy: ['idle_timeout_s', 'absolute_timeout_s', 'reauth_window_s'],
  action: ['name', 'sensitive'],
  key: ['kid'],
};

function checkObject(v, path, allowed) {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ValidationError(path, 'must be an object');
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ValidationError(path ? `${path}.${k}` : k, 'is not a field of schema v1');
  }
}

// present reports whether an optional value is set ("" counts as absent).
const present = (v) => v !== undefined && v !== null && v !== '';

function str(v, field, max) {
  if (typeof v !== 'string') throw new ValidationError(field, 'must be a string');
  if (max !== undefined && Array.from(v).length > max) throw new ValidationError(field, `must be at most ${max} characters`);
  return v;
}

function pseudonym(v, field) {
  if (typeof v !== 'string' || !PSEUDONYM_PATTERN.test(v)) {
    throw new ValidationError(field, 'must be a pseudonym made by a Pseudonymizer, never a raw identifier');
  }
  return v;
}

function checkTime(v, field) {
  if (typeof v !== 'string' || !TIME.test(v)) throw new ValidationError(field, 'must be an RFC 3339 time with milliseconds');
}

function bool(v, field) {
  if (typeof v !== 'boolean') throw new ValidationError(field, 'must be a boolean');
  return v;
}

function num(v, field, lo, hi, integer = false) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    throw new ValidationError(field, `must be ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`);
  }
  return v;
}

function oneOf(v, field, values) {
  if (!values.includes(v)) throw new ValidationError(field, `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
  return v;
}

// put sets out[k] to f(v) when v is present, so that absent and empty
// optional fields are left out of the wire object.
function put(out, k, v, f) {
  if (present(v)) out[k] = f(v);
}

/**
 * buildEvent returns the schema v1 wire object of an event of type, from
 * fields named as on the wire (subject, session, previous_session, client,
 * token, auth, cookie, policy, action, key, attrs, reason, app). Pseudonym
 * fields must come from a Pseudonymizer. It fills a new id and the current
 * time unless given (time may be a Date, Unix milliseconds or a date
 * string), writes times as RFC 3339 UTC with milliseconds, cuts
 * client.ip_prefix to /24 (IPv4) or /48 (IPv6) with host bits zeroed, cuts
 * client.user_agent to 512 characters and leaves out a user agent or token
 * kid that looks like personal data. app may be left out when the event is
 * given to Client.enqueue, which fills its own.
 *
 * It throws a ValidationError naming the field when the event breaks a rule
 * of the schema that can be checked locally: the required fields per type
 * (subject always; session on session.*; token.id on token.*; action.name on
 * action.performed; key.kid on key.retired), previous_session on
 * session.started only, lengths, patterns and ranges.
 */
export function buildEvent(type, fields = {}) {
  if (!TYPES.includes(type)) throw new ValidationError('type', `must be one of ${TYPES.join(', ')}`);
  checkObject(fields, '', FIELDS.top.filter((k) => k !== 'type' && k !== 'schema_version'));
  const f = fields;
  const ev = {
    id: present(f.id) ? f.id : newEventId(),
    schema_version: SCHEMA_VERSION,
    type,
    time: formatTime(present(f.time) ? f.time : new Date()),
  };
  put(ev, 'app', f.app, (v) => v);
  ev.subject = f.subject;
  put(ev, 'session', f.session, (v) => v);
  put(ev, 'previous_session', f.previous_session, (v) => v);
  put(ev, 'reason', f.reason, (v) => v);
  if (present(f.client)) {
    checkObject(f.client, 'client', FIELDS.client);
    const c = { ...f.client };
    if (present(c.ip_prefix)) {
      const cut = cutPrefix(c.ip_prefix);
      if (!cut) throw new ValidationError('client.ip_prefix', 'must be a network prefix such as "203.0.113.0/24"');
      c.ip_prefix = cut;
    }
    if (typeof c.user_agent === 'string') {
      c.user_agent = truncateChars(c.user_agent, MAX_USER_AGENT_CHARS);
      if (looksPersonal(c.user_agent)) delete c.user_agent;
    }
    ev.client = compact(c);
  }
  if (present(f.token)) {
    checkObject(f.token, 'token', FIELDS.token);
    const t = { ...f.token };
    for (const k of ['issued_at', 'expires_at']) if (present(t[k])) t[k] = formatTime(t[k], `token.${k}`);
    if (typeof t.kid === 'string' && looksPersonal(t.kid)) delete t.kid;
    if (Array.isArray(t.claims)) t.claims = [...t.claims];
    ev.token = compact(t);
  }
  if (present(f.auth)) {
    checkObject(f.auth, 'auth', FIELDS.auth);
    const a = { ...f.auth };
    if (present(a.last_auth_at)) a.last_auth_at = formatTime(a.last_auth_at, 'auth.last_auth_at');
    ev.auth = compact(a);
  }
  for (const k of ['cookie', 'policy', 'action', 'key']) {
    if (present(f[k])) {
      checkObject(f[k], k, FIELDS[k]);
      ev[k] = compact({ ...f[k] });
    }
  }
  if (present(f.attrs)) {
    checkObject(f.attrs, 'attrs', Object.keys(f.attrs));
    ev.attrs = { ...f.attrs };
  }
  validateEvent(ev, { requireApp: false });
  return ev;
}

function compact(o) {
  for (const k of Object.keys(o)) if (!present(o[k])) delete o[k];
  return o;
}

/**
 * validateEvent checks a wire object against the rules of schema v1 that
 * can be checked locally and throws a ValidationError naming the first field
 * that breaks one. With requireApp false, a missing app is allowed.
 */
export function validateEvent(ev, { requireApp = true } = {}) {
  checkObject(ev, '', FIELDS.top);
  if (typeof ev.id !== 'string' || !ID.test(ev.id)) throw new ValidationError('id', 'must be 1-64 characters of A-Z a-z 0-9 _ : . ~ -');
  if (ev.schema_version !== SCHEMA_VERSION) throw new ValidationError('schema_version', `must be ${SCHEMA_VERSION}`);
  oneOf(ev.type, 'type', TYPES);
  checkTime(ev.time, 'time');
  if (ev.app !== undefined || requireApp) {
    if (typeof ev.app !== 'string' || !APP.test(ev.app)) throw new ValidationError('app', 'must be 1-64 characters of A-Z a-z 0-9 _ -');
  }
  if (!present(ev.subject)) throw new ValidationError('subject', 'is required');
  pseudonym(ev.subject, 'subject');
  const t = ev.type;
  if (t.startsWith('session.') && !present(ev.session)) throw new ValidationError('session', `is required on ${t}`);
  if (present(ev.session)) pseudonym(ev.session, 'session');
  if (present(ev.previous_session)) {
    if (t !== 'session.started') throw new ValidationError('previous_session', 'is allowed on session.started only');
    pseudonym(ev.previous_session, 'previous_session');
  }
  if (ev.reason !== undefined) str(ev.reason, 'reason', 256);

  if (t.startsWith('token.') && !present(ev.token?.id)) throw new ValidationError('token.id', `is required on ${t}`);
  if (t === 'action.performed' && !present(ev.action?.name)) throw new ValidationError('action.name', `is required on ${t}`);
  if (t === 'key.retired' && !present(ev.key?.kid)) throw new ValidationError('key.kid', `is required on ${t}`);

  const c = ev.client;
  if (c !== undefined) {
    checkObject(c, 'client', FIELDS.client);
    for (const k of ['device', 'ip_hash']) if (present(c[k])) pseudonym(c[k], `client.${k}`);
    if (present(c.ip_prefix) && cutPrefix(c.ip_prefix) !== c.ip_prefix) {
      throw new ValidationError('client.ip_prefix', 'must be a network of at most /24 (IPv4) or /48 (IPv6) with host bits zero');
    }
    if (c.asn !== undefined) num(c.asn, 'client.asn', 0, 4294967295, true);
    if (present(c.country) && !/^[A-Z]{2}$/.test(str(c.country, 'client.country'))) {
      throw new ValidationError('client.country', 'must be an ISO 3166 alpha-2 code such as "DE"');
    }
    if (c.city !== undefined) str(c.city, 'client.city', 128);
    if ((c.lat === undefined) !== (c.lon === undefined)) throw new ValidationError(c.lat === undefined ? 'client.lat' : 'client.lon', 'lat and lon go together');
    if (c.lat !== undefined) num(c.lat, 'client.lat', -90, 90);
    if (c.lon !== undefined) num(c.lon, 'client.lon', -180, 180);
    if (c.accuracy_km !== undefined) num(c.accuracy_km, 'client.accuracy_km', 0, 20038);
    if (c.user_agent !== undefined) str(c.user_agent, 'client.user_agent', MAX_USER_AGENT_CHARS);
  }
  const tok = ev.token;
  if (tok !== undefined) {
    checkObject(tok, 'token', FIELDS.token);
    for (const k of ['id', 'family', 'parent']) if (present(tok[k])) pseudonym(tok[k], `token.${k}`);
    if (tok.kind !== undefined) oneOf(tok.kind, 'token.kind', ['', 'access', 'refresh', 'id', 'api_key']);
    for (const k of ['issued_at', 'expires_at']) if (tok[k] !== undefined) checkTime(tok[k], `token.${k}`);
    if (tok.kid !== undefined) str(tok.kid, 'token.kid', 128);
    if (tok.alg !== undefined) str(tok.alg, 'token.alg', 32);
    if (tok.claims !== undefined) {
      if (!Array.isArray(tok.claims) || tok.claims.length > 64) throw new ValidationError('token.claims', 'must be a list of at most 64 claim names');
      tok.claims.forEach((n, i) => {
        if (typeof n !== 'string' || !CLAIM.test(n)) throw new ValidationError(`token.claims[${i}]`, 'must be a claim name (never its value)');
      });
    }
  }
  if (ev.auth !== undefined) {
    checkObject(ev.auth, 'auth', FIELDS.auth);
    if (ev.auth.method !== undefined) str(ev.auth.method, 'auth.method', 64);
    if (ev.auth.mfa !== undefined) bool(ev.auth.mfa, 'auth.mfa');
    if (ev.auth.last_auth_at !== undefined) checkTime(ev.auth.last_auth_at, 'auth.last_auth_at');
  }
  if (ev.cookie !== undefined) {
    const ck = ev.cookie;
    checkObject(ck, 'cookie', FIELDS.cookie);
    if (ck.name !== undefined) str(ck.name, 'cookie.name', 128);
    if (ck.secure !== undefined) bool(ck.secure, 'cookie.secure');
    if (ck.http_only !== undefined) bool(ck.http_only, 'cookie.http_only');
    if (ck.same_site !== undefined) oneOf(ck.same_site, 'cookie.same_site', ['', 'strict', 'lax', 'none']);
  }
  if (ev.policy !== undefined) {
    checkObject(ev.policy, 'policy', FIELDS.policy);
    for (const k of FIELDS.policy) if (ev.policy[k] !== undefined) num(ev.policy[k], `policy.${k}`, 0, 315360000, true);
  }
  if (ev.action !== undefined) {
    checkObject(ev.action, 'action', FIELDS.action);
    if (ev.action.name !== undefined) str(ev.action.name, 'action.name', 128);
    if (ev.action.sensitive !== undefined) bool(ev.action.sensitive, 'action.sensitive');
  }
  if (ev.key !== undefined) {
    checkObject(ev.key, 'key', FIELDS.key);
    if (ev.key.kid !== undefined) str(ev.key.kid, 'key.kid', 128);
  }
  if (ev.attrs !== undefined) {
    checkObject(ev.attrs, 'attrs', Object.keys(ev.attrs));
    const keys = Object.keys(ev.attrs);
    if (keys.length > 16) throw new ValidationError('attrs', 'must have at most 16 entries');
    for (const k of keys) {
      if (!ATTR_KEY.test(k)) throw new ValidationError('attrs', 'keys must be 1-64 characters of A-Z a-z 0-9 _ . -');
      str(ev.attrs[k], `attrs.${k}`, 256);
    }
  }
  if (Buffer.byteLength(JSON.stringify(ev)) > MAX_EVENT_BYTES) throw new ValidationError('event', `must be at most ${MAX_EVENT_BYTES} bytes of JSON`);
  return ev;
}

/** Builders for each event type: buildEvent with the type filled in. */
export const loginSucceeded = (fields) => buildEvent('login.succeeded', fields);
export const loginFailed = (fields) => buildEvent('login.failed', fields);
export const sessionStarted = (fields) => buildEvent('session.started', fields);
export const sessionActivity = (fields) => buildEvent('session.activity', fields);
export const sessionEnded = (fields) => buildEvent('session.ended', fields);
export const tokenIssued = (fields) => buildEvent('token.issued', fields);
export const tokenRefreshed = (fields) => buildEvent('token.refreshed', fields);
export const tokenUsed = (fields) => buildEvent('token.used', fields);
export const tokenRevoked = (fields) => buildEvent('token.revoked', fields);
export const reauthSucceeded = (fields) => buildEvent('reauth.succeeded', fields);
export const actionPerformed = (fields) => buildEvent('action.performed', fields);
export const keyRetired = (fields) => buildEvent('key.retired', fields);
