"""Reading the client of an HTTP request (WSGI environ or ASGI scope)."""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .pseudonym import Address, Pseudonymizer, _parse_addr_zone, _trusted_network, _unmap, address_prefix

__all__ = ["RequestInspector", "parse_hop"]

#: The longest user agent an event may carry, in characters.
MAX_USER_AGENT_CHARS = 512

_PORT = re.compile(r"[0-9]+")
_ESCAPED = re.compile("[\udc80-\udcff]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Go's unicode.IsSpace, which strings.TrimSpace uses.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _parse_addr_port(s: str) -> Optional[Address]:
    """Go's netip.ParseAddrPort, returning only the address."""
    ip, sep, port = s.rpartition(":")
    if not sep or not ip or not port:
        return None
    v6 = False
    if ip[0] == "[":
        if len(ip) < 2 or ip[-1] != "]":
            return None
        ip, v6 = ip[1:-1], True
    if not _PORT.fullmatch(port) or int(port) > 65535:
        return None
    a, _ = _parse_addr_zone(ip)
    if a is None or (a.version == 6) != v6:
        return None
    return a


def parse_hop(s: str) -> Optional[Address]:
    """Parse an address as found in REMOTE_ADDR or X-Forwarded-For: "addr",
    "addr:port", "[v6]" or "[v6]:port". IPv4-mapped addresses become IPv4
    and zones are dropped. It returns None for anything else."""
    a, _ = _parse_addr_zone(s)
    if a is None:
        a = _parse_addr_port(s)
        if a is None and len(s) > 2 and s[0] == "[" and s[-1] == "]":
            a, _ = _parse_addr_zone(s[1:-1])
    return None if a is None else _unmap(a)


def _wsgi_text(value: str) -> str:
    """A WSGI header value (the header's bytes decoded as latin-1) as text:
    UTF-8 decoded, undecodable bytes kept as surrogate escapes."""
    try:
        return value.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value


def _valid_text(value: Union[str, bytes]) -> str:
    """value as valid text, each run of invalid bytes replaced by one
    U+FFFD (as Go's strings.ToValidUTF8 does)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    return _SURROGATE.sub("\ufffd", _ESCAPED.sub("\ufffd", value))


def _asgi_headers(scope: Mapping[str, Any], name: bytes) -> List[bytes]:
    return [v for k, v in scope.get("headers") or () if k.lower() == name]


class RequestInspector:
    """Reads the client of a request: its address, reported only as a
    network prefix (IPv4 /24, IPv6 /48) and a keyed hash, and its user agent.

    The address is the request's direct peer (REMOTE_ADDR, or an ASGI
    scope's "client"). X-Forwarded-For is honoured only when that peer is
    within ``trusted_proxies`` (a list of CIDR strings such as
    "10.0.0.0/8"): the header is then read right to left, skipping addresses
    of trusted proxies, and the first address outside them is the client. If
    every hop is trusted, the leftmost is the client; if a hop is malformed,
    the proxy that wrote it is taken as the client, since nothing to its
    left can be trusted. The Forwarded header (RFC 7239) is not read.

    A RequestInspector is immutable and thread-safe.
    """

    __slots__ = ("_p", "_trusted")

    def __init__(self, pseudonymizer: Pseudonymizer, trusted_proxies: Iterable[str] = ()) -> None:
        if not isinstance(pseudonymizer, Pseudonymizer):
            raise TypeError("sessionmon: RequestInspector needs a Pseudonymizer")
        if isinstance(trusted_proxies, str):
            raise TypeError("sessionmon: trusted_proxies must be a list of CIDR strings")
        self._p = pseudonymizer
        self._trusted: Tuple[Tuple[int, int, int], ...] = tuple(
            _trusted_network(tp) for tp in trusted_proxies
        )

    def _is_trusted(self, addr: Address) -> bool:
        n = int(addr)
        for version, net, bits in self._trusted:
            if version == addr.version:
                host = addr.max_prefixlen - bits
                if (n >> host) << host == net:
                    return True
        return False

    def client_addr(self, remote_addr: Optional[str], forwarded_for: Sequence[Union[str, bytes]] = ()) -> Optional[Address]:
        """The client address of a request with direct peer ``remote_addr``
        and the values of its X-Forwarded-For headers (text, or the raw
        bytes), in order, as described
        on the class; None when the peer is not a parsable address. For the
        app's own use (such as a GeoIP lookup); the SDK never sends it."""
        peer = parse_hop(remote_addr or "")
        if peer is None:
            return None
        if not self._is_trusted(peer):
            return peer
        client = peer
        for value in reversed(list(forwarded_for)):
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("utf-8", "surrogateescape")
            for hop in reversed(value.split(",")):
                hop = hop.strip(_GO_SPACE)
                if not hop:
                    continue
                addr = parse_hop(hop)
                if addr is None:
                    return client
                client = addr
                if not self._is_trusted(addr):
                    return client
        return client

    def client_info(self, request: Any, headers: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
        """The "client" block of an event for a request: ``ip_prefix``,
        ``ip_hash`` and ``user_agent`` (at most 512 characters), each left
        out when unknown.

        ``request`` is a WSGI environ, an ASGI scope, or a remote address
        string together with ``headers`` (a mapping of header names to a
        value or a list of values). Set ``device`` yourself from the app's
        device cookie with Pseudonymizer.device.
        """
        remote, xff, ua = _request_parts(request, headers)
        out: Dict[str, str] = {}
        addr = self.client_addr(remote, xff)
        if addr is not None:
            out["ip_prefix"] = address_prefix(addr)
            out["ip_hash"] = self._p.ip_hash(addr)
        ua_text = _valid_text(ua)[:MAX_USER_AGENT_CHARS] if ua else ""
        if ua_text:
            out["user_agent"] = ua_text
        return out


def _request_parts(request: Any, headers: Optional[Mapping[str, Any]]) -> Tuple[str, List[Union[str, bytes]], Union[str, bytes]]:
    """(remote address, X-Forwarded-For values, User-Agent) of a request."""
    if isinstance(request, Mapping) and request.get("type") in ("http", "websocket") and "headers" in request:
        client = request.get("client")
        remote = str(client[0]) if client else ""
        xff: List[Union[str, bytes]] = list(_asgi_headers(request, b"x-forwarded-for"))
        uas = _asgi_headers(request, b"user-agent")
        return remote, xff, (uas[0] if uas else b"")
    if isinstance(request, Mapping) and ("REMOTE_ADDR" in request or "wsgi.version" in request):
        xff_value = request.get("HTTP_X_FORWARDED_FOR")
        ua = request.get("HTTP_USER_AGENT") or ""
        return (
            str(request.get("REMOTE_ADDR") or ""),
            [_wsgi_text(xff_value)] if xff_value else [],
            _wsgi_text(ua),
        )
    if request is None or isinstance(request, str):
        xff, ua = [], ""
        for name, value in (headers or {}).items():
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if name.lower() == "x-forwarded-for":
                xff.extend(values)
            elif name.lower() == "user-agent" and values:
                ua = values[0]
        return request or "", xff, ua
    raise TypeError("sessionmon: client_info needs a WSGI environ, an ASGI scope or a remote address")
