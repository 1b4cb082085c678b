import { addrPrefix, formatAddr, parseHop, parseTrusted, prefixContains } from './ip.js';
import { Pseudonymizer } from './pseudonym.js';

/** MAX_USER_AGENT_CHARS is the longest user agent an event may carry. */
export const MAX_USER_AGENT_CHARS = 512;

/**
 * RequestInspector reads the client of an HTTP request (Node's
 * http.IncomingMessage, so also Express and Connect requests): its address,
 * cut to a network prefix and hashed with the Pseudonymizer, and its user
 * agent.
 *
 * The address is the request's direct peer (req.socket.remoteAddress). An
 * X-Forwarded-For header is honoured only when that peer is one of the
 * trusted proxies: the header is then read right to left, skipping addresses
 * of trusted proxies, and the first address outside them is the client. If
 * every hop is trusted, the leftmost is the client; if a hop is malformed,
 * the proxy that wrote it is taken as the client, since nothing to its left
 * can be trusted. The Forwarded header (RFC 7239) is not read, and neither
 * is Express's req.ip, so "trust proxy" settings do not matter here.
 */
export class RequestInspector {
  #p;
  #trusted;

  /**
   * @param {Pseudonymizer} pseudonymizer hashes the client addresses.
   * @param {string[]} [trustedProxies] CIDRs ("10.0.0.0/8", "fd00::/8") of the
   *   reverse proxies whose X-Forwarded-For is believed. None: the header is ignored.
   */
  constructor(pseudonymizer, trustedProxies = []) {
    if (!(pseudonymizer instanceof Pseudonymizer)) {
      throw new TypeError('RequestInspector: pseudonymizer must be a Pseudonymizer');
    }
    if (!Array.isArray(trustedProxies)) throw new TypeError('RequestInspector: trustedProxies must be an array of CIDRs');
    this.#p = pseudonymizer;
    this.#trusted = trustedProxies.map((cidr, i) => {
      const p = parseTrusted(cidr);
      if (!p) throw new TypeError(`RequestInspector: trusted proxy ${i} (${JSON.stringify(String(cidr))}) is not a valid CIDR`);
      return p;
    });
  }

  /**
   * clientInfo returns the client of req as an event's client object:
   * {ip_prefix (IPv4 /24, IPv6 /48), ip_hash, user_agent}. A request without
   * a parsable address has no prefix and no hash. Add device yourself, from
   * pseudonymizer.device(yourDeviceCookie).
   */
  clientInfo(req) {
    const info = {};
    const addr = this.#clientAddr(req);
    if (addr) {
      info.ip_prefix = addrPrefix(addr);
      info.ip_hash = this.#p.ipHash(addr);
    }
    const ua = userAgent(req);
    if (ua) info.user_agent = ua;
    return info;
  }

  /**
   * clientAddr returns the client address of req as described above, for the
   * app's own use (a GeoIP lookup, say), or "" if there is none. The SDK never
   * sends it.
   */
  clientAddr(req) {
    const a = this.#clientAddr(req);
    return a ? formatAddr(a) : '';
  }

  /**
   * clientAddrFrom is clientAddr for a peer address and the X-Forwarded-For
   * header values (one string per header line) given directly.
   */
  clientAddrFrom(remoteAddr, forwardedFor = []) {
    const a = this.#resolve(remoteAddr, forwardedFor);
    return a ? formatAddr(a) : '';
  }

  #clientAddr(req) {
    if (!req) return null;
    return this.#resolve(req.socket?.remoteAddress, forwardedFor(req));
  }

  #resolve(remoteAddr, values) {
    const peer = parseHop(remoteAddr);
    if (!peer) return null;
    if (!this.#isTrusted(peer)) return peer;
    let client = peer;
    for (let i = values.length - 1; i >= 0; i--) {
      const hops = String(values[i]).split(',');
      for (let j = hops.length - 1; j >= 0; j--) {
        const hop = hops[j].trim();
        if (hop === '') continue;
        const addr = parseHop(hop);
        if (!addr) return client;
        client = addr;
        if (!this.#isTrusted(addr)) return client;
      }
    }
    return client;
  }

  #isTrusted(addr) {
    return this.#trusted.some((p) => prefixContains(p, addr));
  }
}

// forwardedFor returns the X-Forwarded-For header lines of req. Node joins
// repeated lines with ", ", which reads the same right to left.
function forwardedFor(req) {
  const v = req.headers?.['x-forwarded-for'];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

// userAgent returns the User-Agent of req, at most MAX_USER_AGENT_CHARS
// characters (code points, as Go counts runes).
function userAgent(req) {
  const ua = req.headers?.['user-agent'];
  if (typeof ua !== 'string' || ua === '') return '';
  return truncateChars(ua, MAX_USER_AGENT_CHARS);
}

/** truncateChars cuts s to at most n code points. */
export function truncateChars(s, n) {
  if (s.length <= n) return s;
  const cps = Array.from(s);
  return cps.length <= n ? s : cps.slice(0, n).join('');
}
