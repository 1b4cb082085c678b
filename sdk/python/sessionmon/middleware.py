"""WSGI and ASGI middleware reporting session activity."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional

from .monitor import Monitor

__all__ = ["WSGIMiddleware", "ASGIMiddleware", "cookie"]

_log = logging.getLogger("sessionmon")

IdGetter = Callable[[Mapping[str, Any]], Optional[str]]

#: The environ or scope keys the default getters read; set them in a view
#: (``request.environ["sessionmon.subject"] = user.id`` in Flask or
#: Django, ``request.scope[...]`` in Starlette).
SUBJECT_KEY = "sessionmon.subject"
SESSION_KEY = "sessionmon.session"


def _key(name: str) -> IdGetter:
    def get(env: Mapping[str, Any]) -> Optional[str]:
        v = env.get(name)
        if v is None and isinstance(env.get("state"), Mapping):
            v = env["state"].get(name)
        return None if v is None else str(v)
    return get


def cookie(name: str) -> IdGetter:
    """A getter returning the value of cookie ``name`` from a WSGI environ
    or an ASGI scope (for example the session id: ``session=cookie("sid")``)."""

    def get(env: Mapping[str, Any]) -> Optional[str]:
        header = env.get("HTTP_COOKIE")
        if header is None:
            for k, v in env.get("headers") or ():
                if k.lower() == b"cookie":
                    header = v.decode("latin-1")
                    break
        for part in (header or "").split(";"):
            k, sep, v = part.partition("=")
            if sep and k.strip() == name:
                return v.strip().strip('"') or None
        return None

    return get


class _Reporter:
    def __init__(self, monitor: Monitor, subject: Optional[IdGetter], session: Optional[IdGetter]) -> None:
        self.monitor = monitor
        self.subject = subject or _key(SUBJECT_KEY)
        self.session = session or _key(SESSION_KEY)

    def report(self, env: Mapping[str, Any]) -> None:
        # Reporting must never break a request.
        try:
            sub, ses = self.subject(env), self.session(env)
            if sub and ses:
                self.monitor.activity(env, sub, ses)
        except Exception:
            _log.exception("sessionmon: reporting session activity failed")


class WSGIMiddleware:
    """Wraps a WSGI app (Flask's ``app.wsgi_app``, Django's
    ``get_wsgi_application()``) and reports session.activity for requests on
    a session, at most once per the Monitor's activity interval per session.

    ``subject`` and ``session`` get the RAW subject and session ids from the
    environ, after the app has handled the request (so a view may store
    them in the environ); by default they read ``environ["sessionmon.subject"]``
    and ``environ["sessionmon.session"]``. A request without both is not
    reported. The ids are pseudonymized before anything is queued.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], monitor: Monitor, *,
                 subject: Optional[IdGetter] = None, session: Optional[IdGetter] = None) -> None:
        self.app = app
        self._reporter = _Reporter(monitor, subject, session)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        self._reporter.report(environ)
        return result


class ASGIMiddleware:
    """Wraps an ASGI app (Starlette, FastAPI) and reports session.activity
    like WSGIMiddleware. The getters receive the scope after the app has
    handled the request; by default they read ``scope["sessionmon.subject"]``
    and ``scope["sessionmon.session"]``, or the same keys in
    ``scope["state"]`` (``request.state`` in Starlette, so set them with
    ``setattr(request.state, "sessionmon.subject", user_id)``).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], monitor: Monitor, *,
                 subject: Optional[IdGetter] = None, session: Optional[IdGetter] = None) -> None:
        self.app = app
        self._reporter = _Reporter(monitor, subject, session)

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await self.app(scope, receive, send)
        if scope.get("type") == "http":
            self._reporter.report(scope)
