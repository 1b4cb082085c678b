import { buildEvent, validateEvent, ValidationError } from './event.js';

/** Limits of one intake request. */
export const MAX_BATCH_EVENTS = 1000;
export const MAX_BATCH_BYTES = 1024 * 1024;

const DEFAULTS = {
  maxBuffer: 10000,
  batchSize: MAX_BATCH_EVENTS,
  flushIntervalMs: 1000,
  retries: 8,
  retryBaseMs: 250,
  retryMaxMs: 30000,
  maxRetryAfterMs: 120000,
  requestTimeoutMs: 10000,
};

/**
 * SessionmonError reports events that were not stored, to the Client's
 * onError callback. code says why:
 *
 *   "rejected"      the intake refused the event as invalid (field and fields
 *                   name what is wrong); it is not retried.
 *   "unauthorized"  the intake refused the token (HTTP 401 or 403).
 *   "overflow"      the buffer was full; the event was not taken.
 *   "closed"        the event came after close().
 *   "failed"        the intake kept failing (retries exhausted) or answered
 *                   with an error that retrying cannot fix (status says which).
 *   "timeout"       close() ran out of time before the event was sent.
 *
 * ids lists the affected event ids. Messages never carry event contents.
 */
export class SessionmonError extends Error {
  constructor(code, message, { ids = [], status, field, fields, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'SessionmonError';
    this.code = code;
    this.ids = ids;
    if (status !== undefined) this.status = status;
    if (field !== undefined) this.field = field;
    if (fields !== undefined) this.fields = fields;
  }
}

function defaultOnError(err) {
  console.error(`sessionmon: ${err.message}`);
}

function isLoopback(hostname) {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * Client sends an app's events to sessionmon's HTTP intake. Create it once
 * at startup, share it, and close() it at shutdown.
 *
 * enqueue() validates an event and buffers it without waiting; a background
 * timer (every flushIntervalMs, or at once when a full batch is waiting)
 * posts the buffer as NDJSON batches of at most 1000 events and 1 MiB, one
 * request at a time. Network errors, 5xx, 429 and 503 are retried with
 * exponential backoff and jitter, honouring Retry-After, and with the same
 * event ids, so the intake stores each event once however often it is
 * resent. Every event ends up counted as accepted, duplicate (stored
 * before), rejected or failed; every rejected or failed event is reported
 * to onError. Memory is bounded: at most maxBuffer events wait, plus one
 * batch in flight.
 */
export class Client {
  #endpoint;
  #auth;
  #app;
  #o;
  #onError;
  #buffer = [];
  #seq = 0;
  #doneSeq = 0;
  #inflight = null;
  #inflightCount = 0;
  #timer;
  #closing = null;
  #abort = new AbortController();
  #counts = { accepted: 0, duplicates: 0, rejected: 0, failed: 0 };

  /**
   * @param {object} options
   * @param {string} options.url base URL of sessionmon ("https://sessionmon.example.com").
   *   Plain http is refused except to localhost, unless allowInsecureHttp is set.
   * @param {string} options.token the app's intake token ("smi_...", from `sessionmon creds app NAME --http`).
   * @param {string} options.app the app name the token belongs to; written into every event.
   * @param {(err: SessionmonError) => void} [options.onError] called for every event not stored
   *   (default: a line on stderr). It must not throw.
   */
  constructor(options = {}) {
    const { url, token, app, onError, allowInsecureHttp = false, ...rest } = options;
    for (const k of Object.keys(rest)) {
      if (!(k in DEFAULTS)) throw new TypeError(`Client: unknown option ${k}`);
    }
    this.#o = { ...DEFAULTS, ...rest };
    let base;
    try {
      base = new URL(url);
    } catch {
      throw new TypeError('Client: url must be an absolute URL such as "https://sessionmon.example.com"');
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError('Client: url must be http or https');
    if (base.protocol === 'http:' && !allowInsecureHttp && !isLoopback(base.hostname)) {
      throw new TypeError('Client: url is plain http to a remote host, which would expose the token; use https or set allowInsecureHttp');
    }
    base.pathname = base.pathname.replace(/\/+$/, '') + '/v1/events';
    this.#endpoint = base.toString();
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) throw new TypeError('Client: token must be the intake token');
    this.#auth = 'Bearer ' + token;
    if (typeof app !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(app)) throw new TypeError('Client: app must be 1-64 characters of A-Z a-z 0-9 _ -');
    this.#app = app;
    if (onError !== undefined && typeof onError !== 'function') throw new TypeError('Client: onError must be a function');
    this.#onError = onError ?? defaultOnError;
    const o = this.#o;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > MAX_BATCH_EVENTS) {
      throw new TypeError(`Client: batchSize must be 1-${MAX_BATCH_EVENTS}`);
    }
    for (const k of Object.keys(DEFAULTS)) {
      if (typeof o[k] !== 'number' || !(o[k] >= 0)) throw new TypeError(`Client: ${k} must be a number >= 0`);
    }
    if (o.maxBuffer < 1) throw new TypeError('Client: maxBuffer must be at least 1');
    this.#timer = setInterval(() => this.#pump(), Math.max(10, o.flushIntervalMs));
    this.#timer.unref();
  }

  /** app is the app name written into every event. */
  get app() {
    return this.#app;
  }

  /**
   * enqueue validates a wire event (from buildEvent or a builder), fills in
   * the client's app when it has none, and buffers it. It returns the event
   * id, or undefined when the event was not taken (buffer full, or after
   * close()), which is reported to onError. It throws a ValidationError
   * naming the field for an invalid event.
   */
  enqueue(event) {
    if (event === null || typeof event !== 'object') throw new ValidationError('event', 'must be an object');
    const ev = event.app === undefined ? { ...event, app: this.#app } : event;
    if (ev.app !== this.#app) throw new ValidationError('app', 'must be the client\'s app');
    validateEvent(ev);
    if (this.#closing) {
      this.#fail([ev.id], 'closed', 'event after close() was not sent');
      return undefined;
    }
    if (this.#buffer.length >= this.#o.maxBuffer) {
      this.#fail([ev.id], 'overflow', `buffer full (${this.#o.maxBuffer} events): event dropped`);
      return undefined;
    }
    const line = JSON.stringify(ev) + '\n';
    this.#buffer.push({ id: ev.id, line, bytes: Buffer.byteLength(line), seq: ++this.#seq });
    if (this.#buffer.length >= this.#o.batchSize) setImmediate(() => this.#pump());
    return ev.id;
  }

  /**
   * report builds an event of type from fields (see buildEvent) for the
   * client's app and enqueues it. It returns the event id, or undefined when
   * the event was not taken.
   */
  report(type, fields = {}) {
    return this.enqueue(buildEvent(type, { ...fields, app: this.#app }));
  }

  /**
   * stats returns the counts of events since the client was created:
   * accepted (stored), duplicates (stored before), rejected, failed (not
   * sent for good: refused token, retries exhausted, overflow, ...), and
   * pending (buffered or in flight).
   */
  stats() {
    return { ...this.#counts, pending: this.#buffer.length + this.#inflightCount };
  }

  /**
   * flush sends every event enqueued before the call, retrying as needed,
   * and resolves with stats() once each of them is stored or failed for good.
   */
  async flush() {
    const target = this.#seq;
    while (this.#doneSeq < target) await this.#pump();
    return this.stats();
  }

  /**
   * close stops taking events (later ones are reported as "closed"), sends
   * what is buffered, and resolves with stats(). After timeoutMs (default 30
   * s) it stops retrying and reports what is left as "timeout". Calling it
   * again returns the same promise.
   */
  close({ timeoutMs = 30000 } = {}) {
    if (!this.#closing) {
      clearInterval(this.#timer);
      this.#closing = (async () => {
        const t = setTimeout(() => this.#abort.abort(), timeoutMs);
        try {
          await this.flush();
        } finally {
          clearTimeout(t);
        }
        return this.stats();
      })();
    }
    return this.#closing;
  }

  // pump starts sending the next batch unless one is in flight, and returns
  // the promise of the batch in flight.
  #pump() {
    if (this.#inflight) return this.#inflight;
    if (this.#buffer.length === 0) return Promise.resolve();
    const batch = this.#takeBatch();
    const last = batch[batch.length - 1].seq;
    this.#inflightCount = batch.length;
    this.#inflight = this.#deliver(batch)
      .catch((err) => this.#fail(batch.map((e) => e.id), 'failed', `send failed: ${err.message}`, { cause: err }))
      .finally(() => {
        this.#inflight = null;
        this.#inflightCount = 0;
        this.#doneSeq = last;
        if (this.#buffer.length >= this.#o.batchSize) setImmediate(() => this.#pump());
      });
    return this.#inflight;
  }

  #takeBatch() {
    let n = 0;
    let bytes = 0;
    while (n < this.#buffer.length && n < this.#o.batchSize) {
      const b = this.#buffer[n].bytes;
      if (n > 0 && bytes + b > MAX_BATCH_BYTES) break;
      bytes += b;
      n++;
    }
    return this.#buffer.splice(0, n);
  }

  // deliver sends batch until every event in it is stored, rejected or
  // failed for good.
  async #deliver(batch) {
    let pending = batch;
    let lastError;
    for (let attempt = 0; ; attempt++) {
      if (this.#abort.signal.aborted) {
        this.#fail(ids(pending), 'timeout', 'close() timed out before the events were sent', { cause: lastError });
        return;
      }
      if (attempt > this.#o.retries) {
        this.#fail(ids(pending), 'failed', `gave up after ${this.#o.retries} retries: ${lastError?.message}`, { cause: lastError, status: lastError?.status });
        return;
      }
      let res;
      try {
        res = await this.#post(pending);
      } catch (err) {
        lastError = err;
        if (this.#abort.signal.aborted) continue;
        await this.#sleep(this.#backoff(attempt));
        continue;
      }
      const { status, body } = res;
      if (status === 200 || status === 202) {
        const results = Array.isArray(body?.results) ? body.results : null;
        if (!results) {
          lastError = httpError(status, 'response without results');
          await this.#sleep(this.#backoff(attempt));
          continue;
        }
        pending = this.#settle(pending, results);
        if (pending.length === 0) return;
        lastError = httpError(status, 'response without a result for every event');
        await this.#sleep(this.#backoff(attempt));
        continue;
      }
      if (status === 413) {
        if (pending.length > 1) {
          const half = Math.ceil(pending.length / 2);
          await this.#deliver(pending.slice(0, half));
          await this.#deliver(pending.slice(half));
          return;
        }
        this.#fail(ids(pending), 'failed', 'intake refused the event as too large (HTTP 413)', { status });
        return;
      }
      if (status === 401 || status === 403) {
        this.#fail(ids(pending), 'unauthorized', `intake refused the token (HTTP ${status}): ${body?.error ?? ''}`, { status });
        return;
      }
      if (status === 429 || status === 503 || status === 408 || status >= 500) {
        lastError = httpError(status, body?.error);
        const after = retryAfterMs(res.retryAfter, this.#o.maxRetryAfterMs);
        await this.#sleep(after ?? this.#backoff(attempt));
        continue;
      }
      this.#fail(ids(pending), 'failed', `intake refused the request (HTTP ${status}): ${body?.error ?? ''}`, { status });
      return;
    }
  }

  // settle counts the per-event results of a 202 and returns the events
  // that got none, to send again.
  #settle(batch, results) {
    const byIndex = new Map();
    results.forEach((r, i) => byIndex.set(Number.isInteger(r?.index) ? r.index : i, r));
    const again = [];
    batch.forEach((e, i) => {
      const r = byIndex.get(i);
      switch (r?.status) {
        case 'accepted':
          this.#counts.accepted++;
          break;
        case 'duplicate':
          this.#counts.duplicates++;
          break;
        case 'rejected': {
          this.#counts.rejected++;
          const fields = Array.isArray(r.fields) ? r.fields : [];
          this.#report(new SessionmonError('rejected', `event ${e.id} rejected: ${r.error ?? 'invalid'}`, { ids: [e.id], field: fields[0], fields }));
          break;
        }
        default:
          again.push(e);
      }
    });
    return again;
  }

  async #post(batch) {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort();
    this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    const t = setTimeout(() => ctl.abort(), this.#o.requestTimeoutMs);
    try {
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers: { authorization: this.#auth, 'content-type': 'application/x-ndjson' },
        body: batch.map((e) => e.line).join(''),
        signal: ctl.signal,
      });
      const text = await res.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body, retryAfter: res.headers.get('retry-after') };
    } finally {
      clearTimeout(t);
      this.#abort.signal.removeEventListener('abort', onAbort);
    }
  }

  #backoff(attempt) {
    const d = Math.min(this.#o.retryMaxMs, this.#o.retryBaseMs * 2 ** attempt);
    return d / 2 + Math.random() * (d / 2);
  }

  #sleep(ms) {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  #fail(eventIds, code, message, extra = {}) {
    this.#counts.failed += eventIds.length;
    this.#report(new SessionmonError(code, `${message} (${eventIds.length} event${eventIds.length === 1 ? '' : 's'})`, { ids: eventIds, ...extra }));
  }

  #report(err) {
    try {
      this.#onError(err);
    } catch {
      // onError must not throw; a throwing callback must not stop delivery.
    }
  }
}

function ids(batch) {
  return batch.map((e) => e.id);
}

function httpError(status, message) {
  const err = new Error(`HTTP ${status}${message ? ': ' + message : ''}`);
  err.status = status;
  return err;
}

// retryAfterMs reads a Retry-After header (seconds or an HTTP date) as
// milliseconds, at most max; undefined when absent or unreadable.
function retryAfterMs(value, max) {
  if (!value) return undefined;
  let ms;
  if (/^\d+$/.test(value.trim())) ms = Number(value.trim()) * 1000;
  else {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - Date.now());
  }
  return Math.min(ms, max);
}
