"""Keyed pseudonyms of identifiers and client addresses.

The construction matches every other sessionmon SDK: with kind one of
"subject", "session", "device", "token" or "ip",

    kind_key  = HMAC-SHA256(key, "sessionmon pseudonym v1 " + kind)
    pseudonym = key_id + ":" + base64url-no-padding(HMAC-SHA256(kind_key, raw)[:16])

where raw is the identifier's UTF-8 bytes, or for "ip" the address's 4
(IPv4) or 16 (IPv6) bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from typing import Dict, Optional, Tuple, Union

__all__ = [
    "MIN_KEY_BYTES",
    "MAX_IPV4_PREFIX_BITS",
    "MAX_IPV6_PREFIX_BITS",
    "Address",
    "Pseudonymizer",
    "parse_address",
    "address_prefix",
    "network_prefix",
]

#: The shortest key a Pseudonymizer accepts: 256 bits.
MIN_KEY_BYTES = 32
#: The widest networks an event may carry: an IPv4 /24 and an IPv6 /48.
MAX_IPV4_PREFIX_BITS = 24
MAX_IPV6_PREFIX_BITS = 48

_MAX_KEY_ID_LEN = 16
_DIGEST_BYTES = 16
_KINDS = ("subject", "session", "device", "token", "ip")
_KEY_ID = re.compile(r"[A-Za-z0-9]{1,16}")
_IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_BITS = re.compile(r"0|[1-9][0-9]{0,2}")

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class Pseudonymizer:
    """Turns identifiers into keyed, one-way pseudonyms ("<key_id>:<digest>").

    The same key and input always give the same pseudonym, so sessionmon can
    correlate events of one subject without learning who it is; without the
    key a pseudonym cannot be reversed or recomputed from a guessed
    identifier. Each kind (subject, session, device, token, ip) uses its own
    derived key, so the same value as a subject and as a session gives
    unrelated pseudonyms.

    ``key_id`` is 1-16 characters of A-Z a-z 0-9 and is written in front of
    every pseudonym; ``key`` is a secret of at least 32 random bytes (for
    example ``secrets.token_bytes(32)``, stored with the app's other
    secrets). To rotate, use a new key with a new key id. The key itself is
    not retained. A Pseudonymizer is immutable and thread-safe.

    Every method returns "" (absent) for an empty input.
    """

    __slots__ = ("_key_id", "_keys")

    def __init__(self, key_id: str, key: bytes) -> None:
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise ValueError(
                "sessionmon: key id must be 1-%d characters of A-Z a-z 0-9" % _MAX_KEY_ID_LEN
            )
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise TypeError("sessionmon: key must be bytes")
        key = bytes(key)
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                "sessionmon: key %r must be at least %d bytes (got %d)"
                % (key_id, MIN_KEY_BYTES, len(key))
            )
        self._key_id = key_id
        self._keys: Dict[str, bytes] = {
            kind: hmac.new(key, b"sessionmon pseudonym v1 " + kind.encode(), hashlib.sha256).digest()
            for kind in _KINDS
        }

    @property
    def key_id(self) -> str:
        """The key id written in front of every pseudonym."""
        return self._key_id

    def subject(self, raw: str) -> str:
        """Pseudonymize the authenticated principal, such as a user id.

        Use a stable identifier; an e-mail address changes and has spellings.
        """
        return self._make("subject", _utf8(raw))

    def session(self, raw: str) -> str:
        """Pseudonymize a session id (such as the session cookie's value)."""
        return self._make("session", _utf8(raw))

    def device(self, raw: str) -> str:
        """Pseudonymize a device identifier, such as a long-lived device cookie."""
        return self._make("device", _utf8(raw))

    def token_id(self, raw_token_or_jti: str) -> str:
        """Fingerprint a token: pass its jti, or the whole token when it has none."""
        return self._make("token", _utf8(raw_token_or_jti))

    def ip_hash(self, addr: Union[str, Address, None]) -> str:
        """Pseudonymize a client address (a string or an ipaddress object).

        Equal addresses give equal values, so sessionmon can tell "same
        address" from "same network" without learning the address.
        IPv4-mapped IPv6 addresses hash as IPv4 and zones are ignored. An
        invalid address gives "".
        """
        a = _as_address(addr)
        if a is None:
            return ""
        return self._make("ip", a.packed)

    def _make(self, kind: str, raw: bytes) -> str:
        if not raw:
            return ""
        digest = hmac.new(self._keys[kind], raw, hashlib.sha256).digest()[:_DIGEST_BYTES]
        return self._key_id + ":" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:
        return "Pseudonymizer(key_id=%r)" % self._key_id


def _utf8(raw: Optional[str]) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    s = str(raw)
    try:
        # surrogateescape gives back the bytes of a value the server decoded
        # with surrogateescape; other lone surrogates become U+FFFD, as Go
        # decodes them.
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", "\ufffd", s).encode("utf-8")


def _unmap(a: Address) -> Address:
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def _as_address(addr: Union[str, Address, None]) -> Optional[Address]:
    if addr is None:
        return None
    if isinstance(addr, str):
        return parse_address(addr)
    if isinstance(addr, ipaddress.IPv6Address) and getattr(addr, "scope_id", None):
        addr = ipaddress.IPv6Address(addr.packed)
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return _unmap(addr)
    return None


def _parse_addr_zone(s: str) -> Tuple[Optional[Address], bool]:
    """Parse s like Go's netip.ParseAddr; report the address (IPv4-mapped
    addresses kept as IPv6, zone dropped) and whether s had a zone."""
    for c in s:
        if c == ".":
            if not _IPV4.fullmatch(s):
                return None, False
            try:
                return ipaddress.IPv4Address(s), False
            except ValueError:
                return None, False
        if c == ":":
            addr, sep, zone = s.partition("%")
            if sep and not zone:
                return None, False
            if not _IPV6_CHARS.fullmatch(addr):
                return None, False
            if "." in addr:
                tail = addr.rsplit(":", 1)[-1]
                if not _IPV4.fullmatch(tail):
                    return None, False
            try:
                return ipaddress.IPv6Address(addr), bool(sep)
            except ValueError:
                return None, False
        if c == "%":
            return None, False
    return None, False


def parse_address(s: str) -> Optional[Address]:
    """Parse an address the way Go's netip.ParseAddr does ("203.0.113.7",
    "2001:db8::1", "fe80::1%eth0"), with IPv4-mapped IPv6 addresses turned
    into IPv4 and zones dropped. It returns None for anything else,
    including host names and addresses with a port."""
    a, _ = _parse_addr_zone(s)
    return None if a is None else _unmap(a)


def _cut(a: Address, bits: int) -> str:
    """The network of a (mapped addresses unmapped) cut to at most the
    widest prefix an event may carry, host bits zeroed, as Go writes it."""
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None and bits >= 96:
        a, bits = a.ipv4_mapped, bits - 96
    limit = MAX_IPV4_PREFIX_BITS if a.version == 4 else MAX_IPV6_PREFIX_BITS
    bits = min(bits, limit)
    net = ipaddress.ip_network((int(a), bits) if a.version == 4 else (a.packed, bits), strict=False)
    return "%s/%d" % (net.network_address.compressed, bits)


def address_prefix(addr: Union[str, Address, None]) -> str:
    """The network an address is reported as: its IPv4 /24 or IPv6 /48
    (IPv4-mapped addresses as IPv4), or "" for an invalid address."""
    a = _as_address(addr)
    if a is None:
        return ""
    return _cut(a, a.max_prefixlen)


def _parse_prefix(s: str) -> Optional[Tuple[Address, int]]:
    """Parse a prefix like Go's netip.ParsePrefix: "addr/bits", no zone,
    bits in decimal without leading zeros or signs. Host bits may be set."""
    if not isinstance(s, str):
        return None
    addr_s, sep, bits_s = s.rpartition("/")
    if not sep or not _BITS.fullmatch(bits_s):
        return None
    a, zoned = _parse_addr_zone(addr_s)
    if a is None or zoned:
        return None
    bits = int(bits_s)
    if bits > a.max_prefixlen:
        return None
    return a, bits


def network_prefix(prefix: str) -> str:
    """Cut an app-given network ("203.0.113.7/32", "2001:db8:1:2::/64") to
    at most /24 (IPv4) or /48 (IPv6) and zero its host bits, so no host
    address can leave the app. A prefix within ::ffff:0:0/96 is read as the
    IPv4 network it maps ("::ffff:192.0.2.0/120" gives "192.0.2.0/24"). It
    returns "" for anything that is not a prefix."""
    parsed = _parse_prefix(prefix)
    if parsed is None:
        return ""
    return _cut(*parsed)


def _valid_prefix(s: str) -> bool:
    """Whether s is an ip_prefix the schema accepts: a network of /24 or
    wider (IPv4) or /48 or wider (IPv6, in hex groups), host bits zero."""
    parsed = _parse_prefix(s)
    if parsed is None:
        return False
    a, bits = parsed
    if a.version == 6 and "." in s:
        return False
    if bits > (MAX_IPV4_PREFIX_BITS if a.version == 4 else MAX_IPV6_PREFIX_BITS):
        return False
    host = a.max_prefixlen - bits
    return (int(a) >> host) << host == int(a)


def _trusted_network(prefix: str) -> Tuple[int, int, int]:
    """A trusted proxy network as (version, masked int, bits); IPv4-mapped
    prefixes of /96 or longer mean the IPv4 network."""
    parsed = _parse_prefix(prefix)
    if parsed is None:
        raise ValueError("sessionmon: trusted proxy %r is not a network in CIDR notation" % (prefix,))
    a, bits = parsed
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None and bits >= 96:
        a, bits = a.ipv4_mapped, bits - 96
    host = a.max_prefixlen - bits
    return a.version, (int(a) >> host) << host, bits
