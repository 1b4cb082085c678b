// Address and prefix parsing and formatting, matching Go's net/netip, so that
// this SDK reports exactly what the Go SDK reports for the same input.

/** Widest prefixes an event may carry: an IPv4 /24 and an IPv6 /48. */
export const MAX_IPV4_PREFIX_BITS = 24;
export const MAX_IPV6_PREFIX_BITS = 48;

// An address is {bytes: Uint8Array(4|16), zone: string}.

function parseIPv4Fields(s, out, off) {
  let val = 0;
  let pos = 0;
  let digLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digLen === 1 && val === 0) return false; // leading zero
      val = val * 10 + (c - 48);
      digLen++;
      if (val > 255) return false;
    } else if (c === 46) {
      if (i === 0 || i === s.length - 1 || s.charCodeAt(i - 1) === 46) return false;
      if (pos === 3) return false;
      out[off + pos++] = val;
      val = 0;
      digLen = 0;
    } else {
      return false;
    }
  }
  if (pos < 3) return false;
  out[off + 3] = val;
  return true;
}

function hexVal(c) {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function parseIPv6(input) {
  let s = input;
  let zone = '';
  const pct = s.indexOf('%');
  if (pct !== -1) {
    zone = s.slice(pct + 1);
    s = s.slice(0, pct);
    if (zone === '') return null;
  }
  const ip = new Uint8Array(16);
  let ellipsis = -1;
  if (s.length >= 2 && s[0] === ':' && s[1] === ':') {
    ellipsis = 0;
    s = s.slice(2);
    if (s.length === 0) return { bytes: ip, zone };
  }
  let i = 0;
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; off < s.length; off++) {
      const h = hexVal(s.charCodeAt(off));
      if (h < 0) break;
      acc = acc * 16 + h;
      if (off > 3) return null;
    }
    if (off === 0) return null;
    if (off < s.length && s[off] === '.') {
      if (ellipsis < 0 && i !== 12) return null;
      if (i + 4 > 16) return null;
      if (!parseIPv4Fields(s, ip, i)) return null;
      s = '';
      i += 4;
      break;
    }
    ip[i] = acc >> 8;
    ip[i + 1] = acc & 0xff;
    i += 2;
    s = s.slice(off);
    if (s.length === 0) break;
    if (s[0] !== ':' || s.length === 1) return null;
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) return null;
      ellipsis = i;
      s = s.slice(1);
      if (s.length === 0) break;
    }
  }
  if (s.length !== 0) return null;
  if (i < 16) {
    if (ellipsis < 0) return null;
    const n = 16 - i;
    for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j];
    ip.fill(0, ellipsis, ellipsis + n);
  } else if (ellipsis >= 0) {
    return null;
  }
  return { bytes: ip, zone };
}

/**
 * parseAddr parses an IPv4 or IPv6 address as Go's netip.ParseAddr does
 * (no leading zeros in IPv4, optional IPv6 zone). Returns null if invalid.
 */
export function parseAddr(s) {
  if (typeof s !== 'string') return null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '.') {
      const b = new Uint8Array(4);
      return parseIPv4Fields(s, b, 0) ? { bytes: b, zone: '' } : null;
    }
    if (c === ':') return parseIPv6(s);
    if (c === '%') return null;
  }
  return null;
}

function is4In6(a) {
  if (a.bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (a.bytes[i] !== 0) return false;
  return a.bytes[10] === 0xff && a.bytes[11] === 0xff;
}

/** unmap turns an IPv4-mapped IPv6 address into IPv4 and drops any zone. */
export function unmap(a) {
  if (is4In6(a)) return { bytes: a.bytes.slice(12), zone: '' };
  return { bytes: a.bytes, zone: '' };
}

/**
 * parseHop parses an address as found in a socket's remote address or an
 * X-Forwarded-For hop: "addr", "addr:port", "[v6]" or "[v6]:port".
 * IPv4-mapped addresses become IPv4 and zones are dropped. Null if invalid.
 */
export function parseHop(s) {
  if (typeof s !== 'string') return null;
  let a = parseAddr(s);
  if (!a) {
    a = parseAddrPort(s);
    if (!a && s.length > 2 && s[0] === '[' && s[s.length - 1] === ']') a = parseAddr(s.slice(1, -1));
    if (!a) return null;
  }
  return unmap(a);
}

function parseAddrPort(s) {
  const i = s.lastIndexOf(':');
  if (i === -1) return null;
  let ip = s.slice(0, i);
  const port = s.slice(i + 1);
  if (ip.length === 0 || port.length === 0) return null;
  let v6 = false;
  if (ip[0] === '[') {
    if (ip.length < 2 || ip[ip.length - 1] !== ']') return null;
    ip = ip.slice(1, -1);
    v6 = true;
  }
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) return null;
  const a = parseAddr(ip);
  if (!a) return null;
  if (v6 !== (a.bytes.length === 16)) return null;
  return a;
}

/** formatAddr writes an address as Go's netip.Addr.String does. */
export function formatAddr(a) {
  const b = a.bytes;
  if (b.length === 4) return b.join('.');
  if (is4In6(a)) return '::ffff:' + Array.from(b.slice(12)).join('.') + (a.zone ? '%' + a.zone : '');
  const g = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i] << 8) | b[2 * i + 1]);
  // RFC 5952: the longest run of two or more zero groups (the first on a
  // tie) becomes "::".
  let zs = -1;
  let ze = -1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i >= 2 && j - i > ze - zs) {
      zs = i;
      ze = j;
    }
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === zs) {
      out += '::';
      i = ze;
      if (i >= 8) break;
    } else if (i > 0) {
      out += ':';
    }
    out += g[i].toString(16);
  }
  return out + (a.zone ? '%' + a.zone : '');
}

/** mask zeroes the host bits of an address beyond bits. */
function mask(bytes, bits) {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const left = bits - i * 8;
    if (left >= 8) out[i] = bytes[i];
    else if (left > 0) out[i] = bytes[i] & (0xff << (8 - left));
  }
  return out;
}

/**
 * parsePrefix parses "addr/bits" as Go's netip.ParsePrefix does (no zone,
 * no sign or leading zeros in bits). Returns {addr, bits} or null.
 */
export function parsePrefix(s) {
  if (typeof s !== 'string') return null;
  const i = s.lastIndexOf('/');
  if (i < 0) return null;
  const addr = parseAddr(s.slice(0, i));
  if (!addr || addr.zone !== '') return null;
  const bitsStr = s.slice(i + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(bitsStr)) return null;
  const bits = Number(bitsStr);
  if (bits > addr.bytes.length * 8) return null;
  return { addr, bits };
}

/**
 * networkPrefix cuts a parsed prefix to the widest one an event may carry
 * (IPv4 /24, IPv6 /48; an IPv4-mapped prefix of /96 or longer counts as
 * IPv4) and zeroes its host bits. Returns the prefix string.
 */
function networkPrefix({ addr, bits }) {
  let a = addr;
  let b = bits;
  if (is4In6(a) && b >= 96) {
    a = unmap(a);
    b -= 96;
  }
  const v4 = a.bytes.length === 4;
  b = Math.min(b, v4 ? MAX_IPV4_PREFIX_BITS : MAX_IPV6_PREFIX_BITS);
  return formatAddr({ bytes: mask(a.bytes, b), zone: '' }) + '/' + b;
}

/**
 * cutPrefix returns the network an app-given prefix ("203.0.113.7/32",
 * "2001:db8::/32") is reported as: at most /24 or /48, host bits zeroed,
 * written like Go's netip.Prefix.String. "" for an invalid prefix.
 */
export function cutPrefix(s) {
  const p = parsePrefix(s);
  return p ? networkPrefix(p) : '';
}

/** addrPrefix returns the network a parsed address is reported as. */
export function addrPrefix(a) {
  const u = unmap(a);
  return networkPrefix({ addr: u, bits: u.bytes.length * 8 });
}

/**
 * parseTrusted parses a trusted-proxy CIDR (a bare address counts as a
 * single host) into a masked prefix, as Go's NewRequestInspector does.
 * Returns null if invalid.
 */
export function parseTrusted(s) {
  let p = parsePrefix(s);
  if (!p) {
    const a = parseAddr(s);
    if (!a || a.zone !== '') return null;
    p = { addr: a, bits: a.bytes.length * 8 };
  }
  let { addr, bits } = p;
  if (is4In6(addr) && bits >= 96) {
    addr = unmap(addr);
    bits -= 96;
  }
  return { bytes: mask(addr.bytes, bits), bits };
}

/** prefixContains reports whether a masked prefix holds an unmapped, zoneless address. */
export function prefixContains(p, a) {
  if (p.bytes.length !== a.bytes.length) return false;
  const m = mask(a.bytes, p.bits);
  for (let i = 0; i < m.length; i++) if (m[i] !== p.bytes[i]) return false;
  return true;
}

/**
 * addressPrefix returns the network an address ("203.0.113.7",
 * "2001:db8::1") is reported as: its IPv4 /24 or IPv6 /48, written like Go's
 * netip.Prefix.String. IPv4-mapped addresses count as IPv4. "" if invalid.
 */
export function addressPrefix(addr) {
  const a = parseAddr(addr);
  return a ? addrPrefix(a) : '';
}
