import { Client } from './client.js';
import { Pseudonymizer } from './pseudonym.js';
import { RequestInspector } from './request.js';

/**
 * middleware returns Express/Connect middleware that reports
 * session.activity for signed-in requests, at most once per session every
 * activityIntervalMs, plus helpers that report the other session events
 * from a request. Mount it after your session and authentication
 * middleware, so that subject(req) and session(req) can read them.
 *
 * Every helper takes raw identifiers (user id, session id, device id,
 * token or jti) and pseudonymizes them before anything is buffered: raw
 * ids never leave the process. Helpers return the ids of the events they
 * enqueued; they never throw on delivery problems (those go to the
 * client's onError), only on invalid input.
 *
 * @param {object} options
 * @param {Client} options.client
 * @param {RequestInspector} options.inspector
 * @param {Pseudonymizer} options.pseudonymizer
 * @param {(req) => string|undefined} options.subject the raw user id of a signed-in request.
 * @param {(req) => string|undefined} options.session the raw session id of a signed-in request.
 * @param {(req) => string|undefined} [options.device] the raw device id (a device cookie, say).
 * @param {number} [options.activityIntervalMs] default 60000.
 * @param {number} [options.maxSessions] sessions remembered for throttling, default 10000.
 */
export function middleware(options = {}) {
  const {
    client,
    inspector,
    pseudonymizer: p,
    subject,
    session,
    device,
    activityIntervalMs = 60000,
    maxSessions = 10000,
  } = options;
  if (!(client instanceof Client)) throw new TypeError('middleware: client must be a Client');
  if (!(inspector instanceof RequestInspector)) throw new TypeError('middleware: inspector must be a RequestInspector');
  if (!(p instanceof Pseudonymizer)) throw new TypeError('middleware: pseudonymizer must be a Pseudonymizer');
  if (typeof subject !== 'function' || typeof session !== 'function') {
    throw new TypeError('middleware: subject and session must be functions of the request');
  }
  if (device !== undefined && typeof device !== 'function') throw new TypeError('middleware: device must be a function of the request');

  // lastSeen maps a session pseudonym to when its activity was last
  // reported, oldest first; it holds at most maxSessions entries.
  const lastSeen = new Map();

  const token = (t = {}) => {
    const { id, family, parent, ...rest } = t;
    return { ...rest, id: p.tokenId(id), family: p.tokenId(family), parent: p.tokenId(parent) };
  };

  // emit pseudonymizes the raw ids a helper got (subject and session
  // default to the request's, unless ownSession), adds the request's
  // client and enqueues the event.
  const emit = (type, req, raw, { ownSession = false } = {}) => {
    const { subject: rawSubject, session: rawSession, previousSession, device: rawDevice, token: rawToken, ...rest } = raw;
    const fields = { ...rest, subject: p.subject(rawSubject ?? subject(req)) };
    const ses = p.session(rawSession ?? (ownSession ? undefined : session(req)));
    if (ses) fields.session = ses;
    const prev = p.session(previousSession);
    if (prev) fields.previous_session = prev;
    if (rawToken) fields.token = token(rawToken);
    const c = inspector.clientInfo(req);
    const dev = p.device(rawDevice ?? device?.(req));
    if (dev) c.device = dev;
    fields.client = c;
    return client.report(type, fields);
  };

  function sessionmon(req, _res, next) {
    try {
      const rawSession = session(req);
      const rawSubject = rawSession ? subject(req) : undefined;
      if (rawSession && rawSubject) {
        const key = p.session(rawSession);
        const now = Date.now();
        const last = lastSeen.get(key);
        if (last === undefined || now - last >= activityIntervalMs) {
          lastSeen.delete(key);
          lastSeen.set(key, now);
          while (lastSeen.size > maxSessions) lastSeen.delete(lastSeen.keys().next().value);
          emit('session.activity', req, { subject: rawSubject, session: rawSession });
        }
      }
    } catch (err) {
      // Reporting must never break the app's request.
      console.error(`sessionmon: session.activity not reported: ${err.message}`);
    }
    next();
  }

  /**
   * login reports login.succeeded and, when a session is given,
   * session.started for it, with previousSession (the pre-login session the
   * app rotated away from), the session cookie's settings and the policy.
   * It returns the ids of the events.
   * raw: {subject, session?, previousSession?, device?, auth?, cookie?, policy?, reason?, attrs?}
   */
  sessionmon.login = (req, raw) => {
    const { cookie, policy, previousSession, ...rest } = raw;
    const ids = [emit('login.succeeded', req, rest, { ownSession: true })];
    if (raw.session) {
      const { auth, ...started } = rest;
      ids.push(emit('session.started', req, { ...started, previousSession, cookie, policy, reason: rest.reason ?? 'login' }, { ownSession: true }));
    }
    return ids;
  };
  /** loginFailed reports login.failed; subject is the raw user name or id that was tried. raw: {subject, reason?, device?, attrs?} */
  sessionmon.loginFailed = (req, raw) => emit('login.failed', req, raw, { ownSession: true });
  /** sessionStarted reports session.started. raw: {subject?, session, previousSession?, cookie?, policy?, auth?, reason?} */
  sessionmon.sessionStarted = (req, raw) => emit('session.started', req, raw, { ownSession: true });
  /** logout reports session.ended (reason "logout" unless given) and forgets the session. raw: {subject?, session?, reason?} */
  sessionmon.logout = (req, raw = {}) => {
    const rawSession = raw.session ?? session(req);
    if (rawSession) lastSeen.delete(p.session(rawSession));
    return emit('session.ended', req, { ...raw, session: rawSession, reason: raw.reason ?? 'logout' });
  };
  /** tokenIssued reports token.issued. raw: {subject?, session?, token: {id (raw jti or token), kind?, family?, parent?, issued_at?, expires_at?, kid?, alg?, claims?}} */
  sessionmon.tokenIssued = (req, raw) => emit('token.issued', req, raw);
  /** tokenRefreshed reports token.refreshed; token.parent is the raw token (or jti) it replaces. */
  sessionmon.tokenRefreshed = (req, raw) => emit('token.refreshed', req, raw);
  /** tokenUsed reports token.used. */
  sessionmon.tokenUsed = (req, raw) => emit('token.used', req, raw);
  /** tokenRevoked reports token.revoked. */
  sessionmon.tokenRevoked = (req, raw) => emit('token.revoked', req, raw);
  /** reauth reports reauth.succeeded. raw: {subject?, session?, auth?} */
  sessionmon.reauth = (req, raw = {}) => emit('reauth.succeeded', req, raw);
  /** action reports action.performed. raw: {subject?, session?, action: {name, sensitive?}, attrs?} */
  sessionmon.action = (req, raw) => emit('action.performed', req, raw);

  return sessionmon;
}
