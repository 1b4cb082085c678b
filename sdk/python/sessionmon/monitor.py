"""One-line reporting of session events from request handlers."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import events
from .client import Client
from .pseudonym import Pseudonymizer
from .request import RequestInspector

__all__ = ["Monitor"]


class _Throttle:
    """Remembers when each session last reported activity, for at most
    ``max_entries`` sessions (the least recently seen are forgotten)."""

    def __init__(self, interval: float, max_entries: int) -> None:
        self._interval = interval
        self._max = max_entries
        self._last: "collections.OrderedDict[str, float]" = collections.OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
            self._last.move_to_end(key)
            while len(self._last) > self._max:
                self._last.popitem(last=False)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)


class Monitor:
    """Reports session events from the app's handlers: pass raw ids (user
    id, session id, token or jti, device cookie) and the request; they are
    pseudonymized here and never leave the process.

    ``request`` is a WSGI environ, an ASGI scope, or None (no client block).
    ``device`` is the raw device id (such as a long-lived device cookie).
    Each method queues its events on the Client and returns their ids. An
    EventError is raised for a call that cannot make a valid event (such as
    an empty subject); delivery problems go to the Client's on_error.

    Session activity is reported at most once per ``activity_interval``
    seconds per session, remembering at most ``max_sessions`` sessions.
    """

    def __init__(
        self,
        client: Client,
        pseudonymizer: Pseudonymizer,
        inspector: Optional[RequestInspector] = None,
        *,
        activity_interval: float = 60.0,
        max_sessions: int = 100_000,
    ) -> None:
        self.client = client
        self.pseudonymizer = pseudonymizer
        self.inspector = inspector or RequestInspector(pseudonymizer)
        self._throttle = _Throttle(activity_interval, max_sessions)

    def _client(self, request: Any, device: Optional[str]) -> Optional[Dict[str, Any]]:
        c: Dict[str, Any] = {}
        if request is not None:
            c.update(self.inspector.client_info(request))
        if device:
            c["device"] = self.pseudonymizer.device(device)
        return c or None

    def _send(self, ev: Dict[str, Any]) -> str:
        self.client.send(ev)
        return ev["id"]

    def _token(self, token: str, family: Optional[str] = None, parent: Optional[str] = None,
               **fields: Any) -> Dict[str, Any]:
        p = self.pseudonymizer
        t = {"id": p.token_id(token), "family": p.token_id(family or ""), "parent": p.token_id(parent or "")}
        t.update(fields)
        return t

    def login(
        self,
        request: Any,
        subject: str,
        *,
        session: Optional[str] = None,
        previous_session: Optional[str] = None,
        cookie: Optional[Mapping[str, Any]] = None,
        policy: Optional[Mapping[str, Any]] = None,
        auth: Optional[Mapping[str, Any]] = None,
        device: Optional[str] = None,
        attrs: Optional[Mapping[str, str]] = None,
    ) -> List[str]:
        """A successful sign-in (login.succeeded) and, when ``session`` is
        given, the session it started (session.started, with the rotated
        ``previous_session``, the session ``cookie`` as set, e.g. {"name":
        "sid", "secure": True, "http_only": True, "same_site": "lax"}, and
        the ``policy``)."""
        p = self.pseudonymizer
        sub = p.subject(subject)
        client = self._client(request, device)
        ids = [self._send(events.login_succeeded(
            self.client.app, sub, session=p.session(session or ""), client=client, auth=auth, attrs=attrs))]
        if session:
            ids.append(self.session_started(
                request, subject, session, previous_session=previous_session,
                cookie=cookie, policy=policy, auth=auth, device=device, attrs=attrs))
        return ids

    def login_failed(self, request: Any, subject: str, reason: str = "bad_credentials", *,
                     device: Optional[str] = None, attrs: Optional[Mapping[str, str]] = None) -> str:
        """A failed sign-in. ``subject`` is the raw id of the account tried
        (not what the user typed, which may be an e-mail address: map it to
        the account id, or pass a fixed value such as "unknown-account")."""
        return self._send(events.login_failed(
            self.client.app, self.pseudonymizer.subject(subject), reason=reason,
            client=self._client(request, device), attrs=attrs))

    def session_started(self, request: Any, subject: str, session: str, *,
                        previous_session: Optional[str] = None,
                        cookie: Optional[Mapping[str, Any]] = None,
                        policy: Optional[Mapping[str, Any]] = None,
                        auth: Optional[Mapping[str, Any]] = None,
                        device: Optional[str] = None,
                        attrs: Optional[Mapping[str, str]] = None) -> str:
        """A new session (session.started); see login."""
        p = self.pseudonymizer
        return self._send(events.session_started(
            self.client.app, p.subject(subject), p.session(session),
            previous_session=p.session(previous_session or ""), client=self._client(request, device),
            cookie=cookie, policy=policy, auth=auth, attrs=attrs))

    def activity(self, request: Any, subject: str, session: str, *, device: Optional[str] = None) -> Optional[str]:
        """A request on a session (session.activity), at most once per
        activity_interval per session; None when throttled."""
        p = self.pseudonymizer
        ses = p.session(session)
        sub = p.subject(subject)
        if not ses or not sub or not self._throttle.allow(ses, time.monotonic()):
            return None
        return self._send(events.session_activity(
            self.client.app, sub, ses, client=self._client(request, device)))

    def logout(self, request: Any, subject: str, session: str, reason: str = "logout", *,
               device: Optional[str] = None) -> str:
        """The end of a session (session.ended)."""
        p = self.pseudonymizer
        ses = p.session(session)
        self._throttle.forget(ses)
        return self._send(events.session_ended(
            self.client.app, p.subject(subject), ses, reason=reason, client=self._client(request, device)))

    def token_issued(self, request: Any, subject: str, token: str, *, session: Optional[str] = None,
                     kind: str = "", family: Optional[str] = None, parent: Optional[str] = None,
                     issued_at: Any = None, expires_at: Any = None, kid: str = "", alg: str = "",
                     claims: Optional[Sequence[str]] = None, device: Optional[str] = None) -> str:
        """A token was issued. ``token`` is its jti, or the token itself
        when it has none (only a fingerprint is sent); ``family`` and
        ``parent`` likewise. ``claims`` are claim NAMES, never values."""
        return self._token_event(events.token_issued, request, subject, token, session, device,
                                 kind=kind, family=family, parent=parent, issued_at=issued_at,
                                 expires_at=expires_at, kid=kid, alg=alg, claims=list(claims) if claims else None)

    def token_refreshed(self, request: Any, subject: str, token: str, *, parent: str,
                        family: Optional[str] = None, session: Optional[str] = None, kind: str = "",
                        issued_at: Any = None, expires_at: Any = None, device: Optional[str] = None) -> str:
        """A token was refreshed: ``token`` is the new one, ``parent`` the
        one it replaced, ``family`` the first of the chain."""
        return self._token_event(events.token_refreshed, request, subject, token, session, device,
                                 kind=kind, family=family, parent=parent, issued_at=issued_at, expires_at=expires_at)

    def token_used(self, request: Any, subject: str, token: str, *, session: Optional[str] = None,
                   kind: str = "", kid: str = "", alg: str = "", family: Optional[str] = None,
                   device: Optional[str] = None) -> str:
        """A token was presented."""
        return self._token_event(events.token_used, request, subject, token, session, device,
                                 kind=kind, kid=kid, alg=alg, family=family)

    def token_revoked(self, request: Any, subject: str, token: str, reason: str = "", *,
                      session: Optional[str] = None, kind: str = "", device: Optional[str] = None) -> str:
        """A token was revoked."""
        return self._token_event(events.token_revoked, request, subject, token, session, device,
                                 kind=kind, reason=reason)

    def _token_event(self, build: Any, request: Any, subject: str, token: str, session: Optional[str],
                     device: Optional[str], reason: str = "", **fields: Any) -> str:
        p = self.pseudonymizer
        return self._send(build(
            self.client.app, p.subject(subject), self._token(token, **fields),
            session=p.session(session or ""), reason=reason, client=self._client(request, device)))

    def reauth(self, request: Any, subject: str, *, session: Optional[str] = None, method: str = "",
               mfa: Optional[bool] = None, device: Optional[str] = None) -> str:
        """The subject authenticated again within a session (reauth.succeeded)."""
        p = self.pseudonymizer
        auth = {"method": method, "mfa": mfa}
        return self._send(events.reauth_succeeded(
            self.client.app, p.subject(subject), session=p.session(session or ""),
            auth=auth, client=self._client(request, device)))

    def action(self, request: Any, subject: str, name: str, *, sensitive: Optional[bool] = None,
               session: Optional[str] = None, attrs: Optional[Mapping[str, str]] = None,
               device: Optional[str] = None) -> str:
        """The subject did something worth watching (action.performed), such
        as "change_email"; ``sensitive`` marks actions that should follow a
        recent authentication."""
        p = self.pseudonymizer
        return self._send(events.action_performed(
            self.client.app, p.subject(subject), name, sensitive,
            session=p.session(session or ""), attrs=attrs, client=self._client(request, device)))

    def key_retired(self, subject: str, kid: str, reason: str = "") -> str:
        """A signing key was retired. ``subject`` is the raw id of the
        service or operator that retired it."""
        return self._send(events.key_retired(
            self.client.app, self.pseudonymizer.subject(subject), kid, reason=reason))
