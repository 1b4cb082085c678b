// Type declarations of @sessionmon/sdk.

import type { IncomingMessage, ServerResponse } from 'node:http';

/** The shortest pseudonymization key accepted: 32 bytes. */
export const MIN_KEY_BYTES: 32;
/** What a Pseudonymizer makes: key id, ":", 22 base64url characters. */
export const PSEUDONYM_PATTERN: RegExp;
/** The longest user agent an event may carry, in characters. */
export const MAX_USER_AGENT_CHARS: 512;
/** Widest prefixes an event may carry. */
export const MAX_IPV4_PREFIX_BITS: 24;
export const MAX_IPV6_PREFIX_BITS: 48;
export const SCHEMA_VERSION: 1;
/** The largest event, as UTF-8 JSON, the intake takes. */
export const MAX_EVENT_BYTES: 16384;
/** Limits of one intake request. */
export const MAX_BATCH_EVENTS: 1000;
export const MAX_BATCH_BYTES: 1048576;

/** A pseudonym made by a Pseudonymizer ("k1:2ewzShAxxnnNR0K4LWhTFg"), or "" for absent. */
export type Pseudonym = string;

/** Thrown for an invalid key id or a key shorter than 32 bytes. */
export class KeyError extends Error {}

/**
 * Pseudonymizer turns identifiers into keyed, one-way pseudonyms with
 * HMAC-SHA256 under a secret key that never leaves the app, byte for byte
 * as the Go SDK does. Empty input gives "" (absent).
 */
export class Pseudonymizer {
  /**
   * @param keyId 1-16 characters of A-Z a-z 0-9, written in front of every pseudonym.
   * @param key a secret of at least 32 random bytes. It is not retained.
   */
  constructor(keyId: string, key: Uint8Array);
  readonly keyId: string;
  /** A stable user id (not an e-mail address). Numbers are taken in decimal form. */
  subject(raw: string | number | bigint | undefined | null): Pseudonym;
  session(raw: string | number | bigint | undefined | null): Pseudonym;
  device(raw: string | number | bigint | undefined | null): Pseudonym;
  /** The token's jti, or the whole token when it has none. */
  tokenId(rawTokenOrJti: string | undefined | null): Pseudonym;
  /** An IPv4 or IPv6 address; IPv4-mapped addresses hash as IPv4, zones are ignored. "" if invalid. */
  ipHash(addr: string): Pseudonym;
}

/** An event's client, minimized: a network and a keyed hash, never the address. */
export interface ClientInfo {
  device?: Pseudonym;
  /** Cut to at most /24 (IPv4) or /48 (IPv6) by the builders. */
  ip_prefix?: string;
  ip_hash?: Pseudonym;
  asn?: number;
  /** ISO 3166 alpha-2, such as "DE". */
  country?: string;
  city?: string;
  lat?: number;
  lon?: number;
  accuracy_km?: number;
  /** At most 512 characters; left out when it looks like personal data. */
  user_agent?: string;
}

/**
 * RequestInspector reads the client of a request: its address (from
 * X-Forwarded-For only when the direct peer is a trusted proxy) cut to a
 * network and hashed, and its user agent.
 */
export class RequestInspector {
  /** @param trustedProxies CIDRs of the reverse proxies whose X-Forwarded-For is believed. */
  constructor(pseudonymizer: Pseudonymizer, trustedProxies?: string[]);
  /** {ip_prefix, ip_hash, user_agent} of the request; add device yourself. */
  clientInfo(req: IncomingMessage): ClientInfo;
  /** The client address, for the app's own use; "" if none. The SDK never sends it. */
  clientAddr(req: IncomingMessage): string;
  /** clientAddr from a peer address and X-Forwarded-For header values. */
  clientAddrFrom(remoteAddr: string, forwardedFor?: string[]): string;
}

/** The network an app-given prefix is reported as (at most /24 or /48, host bits zero); "" if invalid. */
export function cutPrefix(prefix: string): string;
/** The network an address is reported as (its /24 or /48); "" if invalid. */
export function addressPrefix(addr: string): string;

export type EventType =
  | 'login.succeeded'
  | 'login.failed'
  | 'session.started'
  | 'session.activity'
  | 'session.ended'
  | 'token.issued'
  | 'token.refreshed'
  | 'token.used'
  | 'token.revoked'
  | 'reauth.succeeded'
  | 'action.performed'
  | 'key.retired';
export const TYPES: readonly EventType[];

/** A time: a Date, Unix milliseconds or a date string. */
export type TimeInput = Date | number | string;

export interface TokenFields {
  id?: Pseudonym;
  kind?: '' | 'access' | 'refresh' | 'id' | 'api_key';
  family?: Pseudonym;
  parent?: Pseudonym;
  issued_at?: TimeInput;
  expires_at?: TimeInput;
  kid?: string;
  alg?: string;
  /** Claim NAMES, never values. */
  claims?: string[];
}
export interface AuthFields {
  method?: string;
  mfa?: boolean;
  last_auth_at?: TimeInput;
}
export interface CookieFields {
  name?: string;
  secure?: boolean;
  http_only?: boolean;
  same_site?: '' | 'strict' | 'lax' | 'none';
}
export interface PolicyFields {
  idle_timeout_s?: number;
  absolute_timeout_s?: number;
  reauth_window_s?: number;
}

/** What buildEvent takes: the wire fields, pseudonyms from a Pseudonymizer. */
export interface EventFields {
  id?: string;
  time?: TimeInput;
  /** Filled by Client.enqueue when left out. */
  app?: string;
  subject: Pseudonym;
  session?: Pseudonym;
  previous_session?: Pseudonym;
  reason?: string;
  client?: ClientInfo;
  token?: TokenFields;
  auth?: AuthFields;
  cookie?: CookieFields;
  policy?: PolicyFields;
  action?: { name?: string; sensitive?: boolean };
  key?: { kid?: string };
  /** Up to 16 low-cardinality labels; never identifiers or personal data. */
  attrs?: Record<string, string>;
}

/** A schema v1 event as sent on the wire. */
export interface WireEvent extends Omit<EventFields, 'time' | 'token' | 'auth'> {
  id: string;
  schema_version: 1;
  type: EventType;
  time: string;
  token?: Omit<TokenFields, 'issued_at' | 'expires_at'> & { issued_at?: string; expires_at?: string };
  auth?: Omit<AuthFields, 'last_auth_at'> & { last_auth_at?: string };
}

/** Rejects an event before it is sent; field names the offending field ("subject", "client.country"). */
export class ValidationError extends Error {
  readonly field: string;
}

/** A new 26-character event id: 48 bits of Unix ms and 80 random bits in Crockford base32. */
export function newEventId(nowMs?: number): string;
/** RFC 3339 UTC with milliseconds. */
export function formatTime(t: TimeInput): string;
/** Builds and checks a wire event of type; throws ValidationError naming the field. */
export function buildEvent(type: EventType, fields: EventFields): WireEvent;
/** Checks a wire event; throws ValidationError naming the field. */
export function validateEvent<T extends object>(event: T, options?: { requireApp?: boolean }): T;

export function loginSucceeded(fields: EventFields): WireEvent;
export function loginFailed(fields: EventFields): WireEvent;
export function sessionStarted(fields: EventFields): WireEvent;
export function sessionActivity(fields: EventFields): WireEvent;
export function sessionEnded(fields: EventFields): WireEvent;
export function tokenIssued(fields: EventFields): WireEvent;
export function tokenRefreshed(fields: EventFields): WireEvent;
export function tokenUsed(fields: EventFields): WireEvent;
export function tokenRevoked(fields: EventFields): WireEvent;
export function reauthSucceeded(fields: EventFields): WireEvent;
export function actionPerformed(fields: EventFields): WireEvent;
export function keyRetired(fields: EventFields): WireEvent;

/** Why events were not stored; see the README. */
export type ErrorCode = 'rejected' | 'unauthorized' | 'overflow' | 'closed' | 'failed' | 'timeout';

/** Reports events that were not stored, to Client's onError. */
export class SessionmonError extends Error {
  readonly code: ErrorCode;
  /** The affected event ids. */
  readonly ids: string[];
  /** The HTTP status, when the intake answered with an error. */
  readonly status?: number;
  /** On "rejected": the first field the intake named, and all of them. */
  readonly field?: string;
  readonly fields?: string[];
}

export interface ClientOptions {
  /** Base URL of sessionmon; plain http only to localhost unless allowInsecureHttp. */
  url: string;
  /** The app's intake token ("smi_..."). */
  token: string;
  /** The token's app name; written into every event. */
  app: string;
  /** Called for every event not stored (default: a line on stderr). Must not throw. */
  onError?: (err: SessionmonError) => void;
  allowInsecureHttp?: boolean;
  /** Events waiting to be sent at most (default 10000). */
  maxBuffer?: number;
  /** Events per request, 1-1000 (default 1000). */
  batchSize?: number;
  /** How often buffered events are sent (default 1000 ms). */
  flushIntervalMs?: number;
  /** Retries of a failing request (default 8). */
  retries?: number;
  /** First backoff (default 250 ms), doubling up to retryMaxMs (default 30000 ms), with jitter. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Longest Retry-After honoured (default 120000 ms). */
  maxRetryAfterMs?: number;
  /** Timeout of one request (default 10000 ms). */
  requestTimeoutMs?: number;
}

/** Counts of events since the client was created. */
export interface Summary {
  accepted: number;
  duplicates: number;
  rejected: number;
  failed: number;
  /** Buffered or in flight. */
  pending: number;
}

/** Sends events to sessionmon's HTTP intake in batches, with retries; see the README. */
export class Client {
  constructor(options: ClientOptions);
  readonly app: string;
  /** Validates and buffers a wire event; the id, or undefined if not taken (reported to onError). */
  enqueue(event: WireEvent | (Omit<WireEvent, 'app'> & { app?: string })): string | undefined;
  /** buildEvent for the client's app, then enqueue. */
  report(type: EventType, fields: Omit<EventFields, 'app'>): string | undefined;
  stats(): Summary;
  /** Sends every event enqueued before the call; resolves once each is stored or failed for good. */
  flush(): Promise<Summary>;
  /** Stops taking events and sends what is buffered, for at most timeoutMs (default 30000). */
  close(options?: { timeoutMs?: number }): Promise<Summary>;
}

/** A raw identifier; numbers are taken in decimal form. */
export type RawId = string | number | bigint;

/** Raw identifiers a helper takes; they are pseudonymized before anything is buffered. */
export interface RawIds {
  /** Raw user id; default: the middleware's subject(req). */
  subject?: RawId;
  /** Raw session id; default: the middleware's session(req) (not on login helpers). */
  session?: RawId;
  /** Raw device id; default: the middleware's device(req). */
  device?: RawId;
  reason?: string;
  auth?: AuthFields;
  attrs?: Record<string, string>;
}
/** A token by its raw value or jti; only fingerprints are sent. */
export interface RawToken extends Omit<TokenFields, 'id' | 'family' | 'parent'> {
  id: string;
  family?: string;
  parent?: string;
}

export interface MiddlewareOptions<Req extends IncomingMessage = IncomingMessage> {
  client: Client;
  inspector: RequestInspector;
  pseudonymizer: Pseudonymizer;
  /** The raw user id of a signed-in request. */
  subject: (req: Req) => RawId | undefined | null;
  /** The raw session id of a signed-in request. */
  session: (req: Req) => RawId | undefined | null;
  /** The raw device id (a device cookie, say). */
  device?: (req: Req) => RawId | undefined | null;
  /** session.activity at most this often per session (default 60000). */
  activityIntervalMs?: number;
  /** Sessions remembered for that (default 10000). */
  maxSessions?: number;
}

/** Express/Connect middleware reporting session.activity, with helpers for the other events. */
export interface SessionmonMiddleware<Req extends IncomingMessage = IncomingMessage> {
  (req: Req, res: ServerResponse, next: (err?: unknown) => void): void;
  /** login.succeeded, and session.started when session is given. Returns the event ids. */
  login(req: Req, raw: RawIds & { subject: RawId; session?: RawId; previousSession?: RawId; cookie?: CookieFields; policy?: PolicyFields }): (string | undefined)[];
  /** login.failed; subject is the user name or id that was tried. */
  loginFailed(req: Req, raw: RawIds & { subject: RawId }): string | undefined;
  sessionStarted(req: Req, raw: RawIds & { session: RawId; previousSession?: RawId; cookie?: CookieFields; policy?: PolicyFields }): string | undefined;
  /** session.ended (reason "logout" unless given); forgets the session. */
  logout(req: Req, raw?: RawIds): string | undefined;
  tokenIssued(req: Req, raw: RawIds & { token: RawToken }): string | undefined;
  tokenRefreshed(req: Req, raw: RawIds & { token: RawToken }): string | undefined;
  tokenUsed(req: Req, raw: RawIds & { token: RawToken }): string | undefined;
  tokenRevoked(req: Req, raw: RawIds & { token: RawToken }): string | undefined;
  reauth(req: Req, raw?: RawIds): string | undefined;
  action(req: Req, raw: RawIds & { action: { name: string; sensitive?: boolean } }): string | undefined;
}

export function middleware<Req extends IncomingMessage = IncomingMessage>(options: MiddlewareOptions<Req>): SessionmonMiddleware<Req>;
