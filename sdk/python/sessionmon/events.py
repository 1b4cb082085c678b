"""Builders of schema v1 session events, as the dicts sent on the wire.

Each builder takes pseudonyms (from a Pseudonymizer), never raw ids, and
returns a new event dict with ``id``, ``schema_version``, ``time`` and
``app`` filled in. Builders check the rules of their type and raise
EventError naming the field; the intake checks everything again.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import re
import time as _time
from typing import Any, Dict, Mapping, Optional

from .pseudonym import _valid_prefix, network_prefix

__all__ = [
    "SCHEMA_VERSION",
    "TYPES",
    "MAX_EVENT_BYTES",
    "EventError",
    "new_event_id",
    "format_time",
    "event",
    "validate",
    "encode",
    "login_succeeded",
    "login_failed",
    "session_started",
    "session_activity",
    "session_ended",
    "token_issued",
    "token_refreshed",
    "token_used",
    "token_revoked",
    "reauth_succeeded",
    "action_performed",
    "key_retired",
]

SCHEMA_VERSION = 1
#: The largest encoded event the intake accepts.
MAX_EVENT_BYTES = 16384
TYPES = (
    "login.succeeded", "login.failed", "session.started", "session.activity", "session.ended",
    "token.issued", "token.refreshed", "token.used", "token.revoked", "reauth.succeeded",
    "action.performed", "key.retired",
)
_SESSION_TYPES = ("session.started", "session.activity", "session.ended")
_TOKEN_TYPES = ("token.issued", "token.refreshed", "token.used", "token.revoked")

_ID = re.compile(r"[A-Za-z0-9_:.~-]{1,64}")
_APP = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PSEUDONYM = re.compile(r"[A-Za-z0-9_:~-]{8,128}")
_CLAIM = re.compile(r"[A-Za-z0-9_:./-]{1,64}")
_ATTR_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"\.[0-9]{3,9}(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
# Text a user controls (the User-Agent, a token's kid) that looks like an
# e-mail address is left out: the intake refuses a whole event carrying
# personal data, and nobody should hide their sign-ins that way.
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")


class EventError(ValueError):
    """An event breaks a rule of schema v1; ``field`` names the field
    (such as "session" or "token.id")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("%s: %s" % (field, message))
        self.field = field


def new_event_id() -> str:
    """A new unique event id: 26 characters of Crockford base32 encoding
    48 bits of Unix milliseconds and 80 random bits, so ids sort roughly by
    creation time."""
    ms = _time.time_ns() // 1_000_000
    raw = (ms & (1 << 48) - 1).to_bytes(6, "big") + os.urandom(10)
    return base64.b32encode(raw).rstrip(b"=").translate(_CROCKFORD).decode("ascii")


def format_time(t: Optional[_dt.datetime] = None) -> str:
    """t (default: now) in RFC 3339, UTC, with milliseconds:
    "2026-12-07T13:54:32.123Z". A naive datetime is taken as UTC."""
    if t is None:
        t = _dt.datetime.now(_dt.timezone.utc)
    elif t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    u = t.astimezone(_dt.timezone.utc)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (u.microsecond // 1000)


def _time_value(field: str, t: Any) -> str:
    if isinstance(t, _dt.datetime):
        return format_time(t)
    if isinstance(t, str) and _TIME.fullmatch(t):
        return t
    raise EventError(field, "must be a datetime or an RFC 3339 time with milliseconds")


def event(
    type: str,
    app: str,
    subject: str,
    *,
    session: str = "",
    previous_session: str = "",
    reason: str = "",
    client: Optional[Mapping[str, Any]] = None,
    token: Optional[Mapping[str, Any]] = None,
    auth: Optional[Mapping[str, Any]] = None,
    cookie: Optional[Mapping[str, Any]] = None,
    policy: Optional[Mapping[str, Any]] = None,
    action: Optional[Mapping[str, Any]] = None,
    key: Optional[Mapping[str, Any]] = None,
    attrs: Optional[Mapping[str, str]] = None,
    time: Optional[_dt.datetime] = None,
    id: str = "",
) -> Dict[str, Any]:
    """Build and validate an event of any type. Prefer the per-type builders.

    ``subject``, ``session``, ``previous_session``, ``client["device"]``,
    ``client["ip_hash"]`` and ``token["id"/"family"/"parent"]`` are
    pseudonyms from a Pseudonymizer. ``client`` is usually
    RequestInspector.client_info(...); an ``ip_prefix`` you set yourself is
    cut to at most /24 (IPv4) or /48 (IPv6). Times may be datetimes. Empty
    optional values are left out. ``reason``, action names and ``attrs``
    are short machine-readable labels: never put personal data in them.
    """
    ev: Dict[str, Any] = {
        "id": id or new_event_id(),
        "schema_version": SCHEMA_VERSION,
        "type": type,
        "time": format_time(time),
        "app": app,
        "subject": subject,
    }
    for name, value in (("session", session), ("previous_session", previous_session), ("reason", reason)):
        if value:
            ev[name] = value
    if client:
        c = _compact(client)
        if "ip_prefix" in c:
            p = network_prefix(c["ip_prefix"])
            if not p:
                raise EventError("client.ip_prefix", "must be a network in CIDR notation (e.g. 203.0.113.0/24)")
            c["ip_prefix"] = p
        if isinstance(c.get("user_agent"), str):
            c["user_agent"] = c["user_agent"][:512]
            if _EMAIL.search(c["user_agent"]):
                del c["user_agent"]
        ev["client"] = c
    if token:
        t = _compact(token)
        for f in ("issued_at", "expires_at"):
            if f in t:
                t[f] = _time_value("token." + f, t[f])
        if isinstance(t.get("kid"), str) and _EMAIL.search(t["kid"]):
            del t["kid"]
        if "claims" in t:
            t["claims"] = list(t["claims"])
        ev["token"] = t
    if auth:
        a = _compact(auth)
        if "last_auth_at" in a:
            a["last_auth_at"] = _time_value("auth.last_auth_at", a["last_auth_at"])
        ev["auth"] = a
    for name, block in (("cookie", cookie), ("policy", policy), ("action", action), ("key", key)):
        if block:
            ev[name] = _compact(block)
    if attrs:
        ev["attrs"] = dict(attrs)
    validate(ev)
    return ev


def _compact(block: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of block without None and empty-string values."""
    return {k: v for k, v in block.items() if v is not None and v != ""}


def _pseudonym(ev: Mapping[str, Any], field: str, required: bool) -> None:
    parent, _, name = field.rpartition(".")
    block = ev.get(parent, {}) if parent else ev
    value = block.get(name, "") if isinstance(block, Mapping) else ""
    if value == "" or value is None:
        if required:
            raise EventError(field, "is required on %s" % ev.get("type"))
        return
    if not isinstance(value, str) or not _PSEUDONYM.fullmatch(value):
        raise EventError(field, "must be a pseudonym from a Pseudonymizer (8-128 characters of A-Z a-z 0-9 _ : ~ -), never a raw value")


_STR, _BOOL, _INT, _NUM, _TIMEV, _LIST, _MAP = "string", "boolean", "integer", "number", "time", "array", "object"
# Each block's fields: name -> (kind, limit); for strings the longest
# length, for numbers the (lowest, highest) value.
_BLOCKS: Dict[str, Dict[str, Any]] = {
    "": {"id": (_STR, 64), "schema_version": (_INT, (1, 1)), "type": (_STR, 64), "time": (_TIMEV, None),
         "app": (_STR, 64), "subject": (_STR, 128), "session": (_STR, 128), "previous_session": (_STR, 128),
         "reason": (_STR, 256), "client": (_MAP, None), "token": (_MAP, None), "auth": (_MAP, None),
         "cookie": (_MAP, None), "policy": (_MAP, None), "action": (_MAP, None), "key": (_MAP, None),
         "attrs": (_MAP, None)},
    "client": {"device": (_STR, 128), "ip_prefix": (_STR, 64), "ip_hash": (_STR, 128), "asn": (_INT, (0, 4294967295)),
               "country": (_STR, 2), "city": (_STR, 128), "lat": (_NUM, (-90, 90)), "lon": (_NUM, (-180, 180)),
               "accuracy_km": (_NUM, (0, 20038)), "user_agent": (_STR, 512)},
    "token": {"id": (_STR, 128), "kind": (_STR, 16), "family": (_STR, 128), "parent": (_STR, 128),
              "issued_at": (_TIMEV, None), "expires_at": (_TIMEV, None), "kid": (_STR, 128), "alg": (_STR, 32),
              "claims": (_LIST, None)},
    "auth": {"method": (_STR, 64), "mfa": (_BOOL, None), "last_auth_at": (_TIMEV, None)},
    "cookie": {"name": (_STR, 128), "secure": (_BOOL, None), "http_only": (_BOOL, None), "same_site": (_STR, 16)},
    "policy": {"idle_timeout_s": (_INT, (0, 315360000)), "absolute_timeout_s": (_INT, (0, 315360000)),
               "reauth_window_s": (_INT, (0, 315360000))},
    "action": {"name": (_STR, 128), "sensitive": (_BOOL, None)},
    "key": {"kid": (_STR, 128)},
}


def _check_block(block: Any, name: str) -> None:
    prefix = name + "." if name else ""
    if not isinstance(block, Mapping):
        raise EventError(name or "event", "must be an object")
    if name == "attrs":
        return
    spec = _BLOCKS[name]
    for field, value in block.items():
        if field not in spec:
            raise EventError(prefix + str(field), "is not a schema v1 field")
        kind, limit = spec[field]
        ok = {
            _STR: isinstance(value, str),
            _TIMEV: isinstance(value, str),
            _BOOL: isinstance(value, bool),
            _INT: isinstance(value, int) and not isinstance(value, bool),
            _NUM: isinstance(value, (int, float)) and not isinstance(value, bool),
            _LIST: isinstance(value, (list, tuple)),
            _MAP: isinstance(value, Mapping),
        }[kind]
        if not ok:
            raise EventError(prefix + field, "must be a%s %s" % ("n" if kind[0] in "aio" else "", kind))
        if kind == _STR and len(value) > limit:
            raise EventError(prefix + field, "must be at most %d characters" % limit)
        if kind == _TIMEV and not _TIME.fullmatch(value):
            raise EventError(prefix + field, "must be an RFC 3339 time with milliseconds")
        if kind in (_INT, _NUM) and not (limit[0] <= value <= limit[1]):
            raise EventError(prefix + field, "must be between %s and %s" % limit)
        if kind == _MAP:
            _check_block(value, field)


def validate(ev: Mapping[str, Any]) -> None:
    """Check the rules of schema v1 that need no server (known fields and
    their types, required fields per type, the form of ids, pseudonyms,
    times and prefixes, size limits) and raise EventError naming the first
    broken field. The intake checks everything again, including its
    personal-data guard."""
    _check_block(ev, "")
    if not isinstance(ev.get("id"), str) or not _ID.fullmatch(ev["id"]):
        raise EventError("id", "must be 1-64 characters of A-Z a-z 0-9 _ : . ~ -")
    if ev.get("schema_version") != SCHEMA_VERSION:
        raise EventError("schema_version", "must be %d" % SCHEMA_VERSION)
    typ = ev.get("type")
    if typ not in TYPES:
        raise EventError("type", "must be one of %s" % ", ".join(TYPES))
    if not isinstance(ev.get("time"), str):
        raise EventError("time", "is required")
    if not isinstance(ev.get("app"), str) or not _APP.fullmatch(ev["app"]):
        raise EventError("app", "must be 1-64 characters of A-Z a-z 0-9 _ -")
    _pseudonym(ev, "subject", True)
    _pseudonym(ev, "session", typ in _SESSION_TYPES)
    _pseudonym(ev, "previous_session", False)
    if ev.get("previous_session") and typ != "session.started":
        raise EventError("previous_session", "is allowed only on session.started")
    c = ev.get("client")
    if c is not None:
        _pseudonym(ev, "client.device", False)
        _pseudonym(ev, "client.ip_hash", False)
        p = c.get("ip_prefix")
        if p and not _valid_prefix(p):
            raise EventError("client.ip_prefix", "must be a network of /24 (IPv4) or /48 (IPv6) or wider, host bits zero")
        if c.get("country") and not _COUNTRY.fullmatch(c["country"]):
            raise EventError("client.country", "must be an ISO 3166 alpha-2 code in upper case")
        if ("lat" in c) != ("lon" in c):
            raise EventError("client.lat" if "lon" in c else "client.lon", "lat and lon go together")
    t = ev.get("token")
    if typ in _TOKEN_TYPES and not t:
        raise EventError("token", "is required on %s" % typ)
    if t is not None:
        _pseudonym(ev, "token.id", typ in _TOKEN_TYPES)
        _pseudonym(ev, "token.family", False)
        _pseudonym(ev, "token.parent", False)
        if t.get("kind", "") not in ("", "access", "refresh", "id", "api_key"):
            raise EventError("token.kind", "must be one of access, refresh, id, api_key")
        claims = t.get("claims") or []
        if len(claims) > 64:
            raise EventError("token.claims", "must have at most 64 claim names")
        for i, name in enumerate(claims):
            if not isinstance(name, str) or not _CLAIM.fullmatch(name):
                raise EventError("token.claims[%d]" % i, "must be a claim name, never a claim value")
    if ev.get("cookie") is not None and ev["cookie"].get("same_site", "") not in ("", "strict", "lax", "none"):
        raise EventError("cookie.same_site", "must be one of strict, lax, none")
    if typ == "action.performed" and not (ev.get("action") or {}).get("name"):
        raise EventError("action.name", "is required on action.performed")
    if typ == "key.retired" and not (ev.get("key") or {}).get("kid"):
        raise EventError("key.kid", "is required on key.retired")
    attrs = ev.get("attrs")
    if attrs is not None:
        if len(attrs) > 16:
            raise EventError("attrs", "must have at most 16 keys")
        for k, v in attrs.items():
            if not isinstance(k, str) or not _ATTR_KEY.fullmatch(k):
                raise EventError("attrs", "keys must be 1-64 characters of A-Z a-z 0-9 _ . -")
            if not isinstance(v, str) or len(v.encode("utf-8", "surrogatepass")) > 256:
                raise EventError("attrs." + k, "must be a string of at most 256 bytes")
    try:
        size = len(encode(ev))
    except (UnicodeEncodeError, ValueError):
        raise EventError("event", "must be valid text (no lone surrogates) and finite numbers") from None
    if size > MAX_EVENT_BYTES:
        raise EventError("event", "must be at most %d bytes encoded" % MAX_EVENT_BYTES)


def encode(ev: Mapping[str, Any]) -> bytes:
    """ev as one line of compact UTF-8 JSON, without the newline."""
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def login_succeeded(app: str, subject: str, **kw: Any) -> Dict[str, Any]:
    """A sign-in that succeeded. Usually followed by session_started."""
    return event("login.succeeded", app, subject, **kw)


def login_failed(app: str, subject: str, **kw: Any) -> Dict[str, Any]:
    """A sign-in that failed; ``reason`` such as "bad_password". The subject
    is the pseudonym of the account tried (pseudonymize what the user typed
    only after mapping it to an account id, or use a fixed "unknown" id)."""
    return event("login.failed", app, subject, **kw)


def session_started(app: str, subject: str, session: str, **kw: Any) -> Dict[str, Any]:
    """A new session; pass ``previous_session`` (the pre-login session),
    ``cookie`` and ``policy`` to let sessionmon check them."""
    return event("session.started", app, subject, session=session, **kw)


def session_activity(app: str, subject: str, session: str, **kw: Any) -> Dict[str, Any]:
    """A request on a session (the middleware reports these, throttled)."""
    return event("session.activity", app, subject, session=session, **kw)


def session_ended(app: str, subject: str, session: str, **kw: Any) -> Dict[str, Any]:
    """The end of a session; ``reason`` such as "logout" or "expired"."""
    return event("session.ended", app, subject, session=session, **kw)


def token_issued(app: str, subject: str, token: Mapping[str, Any], **kw: Any) -> Dict[str, Any]:
    """A token was issued; ``token`` holds at least its fingerprint "id"."""
    return event("token.issued", app, subject, token=token, **kw)


def token_refreshed(app: str, subject: str, token: Mapping[str, Any], **kw: Any) -> Dict[str, Any]:
    """A token was refreshed; ``token`` names the new one, its "parent" and "family"."""
    return event("token.refreshed", app, subject, token=token, **kw)


def token_used(app: str, subject: str, token: Mapping[str, Any], **kw: Any) -> Dict[str, Any]:
    """A token was presented."""
    return event("token.used", app, subject, token=token, **kw)


def token_revoked(app: str, subject: str, token: Mapping[str, Any], **kw: Any) -> Dict[str, Any]:
    """A token was revoked."""
    return event("token.revoked", app, subject, token=token, **kw)


def reauth_succeeded(app: str, subject: str, **kw: Any) -> Dict[str, Any]:
    """The subject authenticated again within a session (step-up)."""
    return event("reauth.succeeded", app, subject, **kw)


def action_performed(app: str, subject: str, name: str, sensitive: Optional[bool] = None, **kw: Any) -> Dict[str, Any]:
    """The subject did something worth watching, such as "change_email";
    ``sensitive`` marks actions that should need a recent authentication."""
    act: Dict[str, Any] = {"name": name}
    if sensitive is not None:
        act["sensitive"] = sensitive
    return event("action.performed", app, subject, action=act, **kw)


def key_retired(app: str, subject: str, kid: str, **kw: Any) -> Dict[str, Any]:
    """A signing key was retired; tokens signed with ``kid`` are suspect from now on."""
    return event("key.retired", app, subject, key={"kid": kid}, **kw)

