import { createHmac } from 'node:crypto';
import { parseAddr, unmap } from './ip.js';

/** MIN_KEY_BYTES is the shortest pseudonymization key accepted: 256 bits. */
export const MIN_KEY_BYTES = 32;

const MAX_KEY_ID_LEN = 16;
const DIGEST_BYTES = 16;
const KINDS = ['subject', 'session', 'device', 'token', 'ip'];

/**
 * PSEUDONYM_PATTERN matches what a Pseudonymizer makes: the key id, a colon
 * and 22 base64url characters.
 */
export const PSEUDONYM_PATTERN = /^[A-Za-z0-9]{1,16}:[A-Za-z0-9_-]{22}$/;

/** KeyError is thrown for an invalid key id or a key that is too short. */
export class KeyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'KeyError';
  }
}

/**
 * Pseudonymizer turns identifiers into keyed, one-way pseudonyms with
 * HMAC-SHA256 under a secret key that never leaves the app. The same key and
 * input always give the same pseudonym, so sessionmon can correlate events of
 * one user without learning who it is. It matches the Go SDK byte for byte:
 *
 *   kindKey   = HMAC-SHA256(key, "sessionmon pseudonym v1 " + kind)
 *   pseudonym = keyId + ":" + base64url-no-padding(HMAC-SHA256(kindKey, raw)[:16])
 *
 * To rotate, create a Pseudonymizer with a new key and a new key id.
 */
export class Pseudonymizer {
  #keyId;
  #keys = new Map();

  /**
   * @param {string} keyId 1-16 characters of A-Z a-z 0-9, written in front of every pseudonym.
   * @param {Buffer|Uint8Array} key a secret of at least 32 random bytes. It is not retained.
   */
  constructor(keyId, key) {
    if (typeof keyId !== 'string' || !/^[A-Za-z0-9]{1,16}$/.test(keyId)) {
      throw new KeyError(`key id must be 1-${MAX_KEY_ID_LEN} characters of A-Z a-z 0-9`);
    }
    if (!(key instanceof Uint8Array) || key.length < MIN_KEY_BYTES) {
      const got = key instanceof Uint8Array ? key.length : typeof key;
      throw new KeyError(`key ${keyId} must be a Buffer or Uint8Array of at least ${MIN_KEY_BYTES} bytes (got ${got})`);
    }
    this.#keyId = keyId;
    for (const kind of KINDS) {
      this.#keys.set(kind, createHmac('sha256', key).update('sessionmon pseudonym v1 ' + kind).digest());
    }
  }

  /** keyId is the key id written in front of every pseudonym. */
  get keyId() {
    return this.#keyId;
  }

  /** subject pseudonymizes a stable user id (not an e-mail address). "" for empty input. */
  subject(raw) {
    return this.#make('subject', raw);
  }

  /** session pseudonymizes a session id. "" for empty input. */
  session(raw) {
    return this.#make('session', raw);
  }

  /** device pseudonymizes a device id, such as a long-lived device cookie. "" for empty input. */
  device(raw) {
    return this.#make('device', raw);
  }

  /** tokenId fingerprints a token: pass its jti, or the whole token when it has none. "" for empty input. */
  tokenId(rawTokenOrJti) {
    return this.#make('token', rawTokenOrJti);
  }

  /**
   * ipHash pseudonymizes an address ("203.0.113.7", "2001:db8::1",
   * "fe80::1%eth0"). IPv4-mapped IPv6 addresses hash as IPv4 and zones are
   * ignored. "" for an invalid address.
   */
  ipHash(addr) {
    const a = typeof addr === 'string' ? parseAddr(addr) : addr;
    if (!a || !(a.bytes instanceof Uint8Array)) return '';
    return this.#make('ip', unmap(a).bytes);
  }

  #make(kind, raw) {
    if (raw === undefined || raw === null) return '';
    let bytes;
    // Numeric ids are taken in their decimal form, as String(42) writes them.
    if (typeof raw === 'number' || typeof raw === 'bigint') raw = String(raw);
    if (typeof raw === 'string') bytes = Buffer.from(raw, 'utf8');
    else if (raw instanceof Uint8Array) bytes = raw;
    else throw new TypeError(`${kind}: identifier must be a string or a number`);
    if (bytes.length === 0) return '';
    const digest = createHmac('sha256', this.#keys.get(kind)).update(bytes).digest().subarray(0, DIGEST_BYTES);
    return this.#keyId + ':' + digest.toString('base64url');
  }
}
