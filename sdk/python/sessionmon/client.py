"""Delivery of events to sessionmon's HTTP intake."""

from __future__ import annotations

import atexit
import collections
import email.utils
import ipaddress
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from .events import EventError, MAX_EVENT_BYTES, encode, validate

__all__ = ["Client", "DeliveryError", "Summary", "MAX_BATCH_EVENTS", "MAX_BATCH_BYTES"]

#: The most events one request carries (the intake's limit).
MAX_BATCH_EVENTS = 1000
#: The largest request body (the intake's limit).
MAX_BATCH_BYTES = 1 << 20

_log = logging.getLogger("sessionmon")
_VERSION = "0.1.0"


@dataclass(frozen=True)
class Summary:
    """What became of the events a Client took: ``accepted`` (stored),
    ``duplicates`` (already stored, from an earlier attempt or a repeated
    id: delivered too), ``rejected`` (refused by the intake as invalid,
    never retried), ``failed`` (not stored: the queue was full, the token
    was refused, or close ran out of time) and ``pending`` (not resolved
    yet)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    pending: int = 0


class DeliveryError(Exception):
    """Why events were not stored; passed to the Client's on_error.

    ``kind`` is one of "rejected" (the intake refused the event, see
    ``fields``), "unauthorized" (401: bad, expired or revoked token),
    "refused" (another 4xx: the request as a whole), "overflow" (the queue
    was full), "undelivered" (still unsent when close's timeout ended).
    ``event_ids`` lists the ids of the events concerned. The message names
    fields and statuses, never the values of events.
    """

    def __init__(self, kind: str, message: str, event_ids: Sequence[str] = (),
                 status: Optional[int] = None, fields: Sequence[str] = ()) -> None:
        super().__init__("sessionmon: %s: %s" % (kind, message))
        self.kind = kind
        self.status = status
        self.event_ids: Tuple[str, ...] = tuple(event_ids)
        self.fields: Tuple[str, ...] = tuple(fields)


class _Entry:
    __slots__ = ("seq", "id", "line")

    def __init__(self, seq: int, id: str, line: bytes) -> None:
        self.seq, self.id, self.line = seq, id, line


class _Retry(Exception):
    def __init__(self, why: str, after: Optional[float] = None) -> None:
        super().__init__(why)
        self.after = after


def _is_loopback(url: str) -> bool:
    """Reports whether url's host is this machine (localhost or a loopback address)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """Sends events to sessionmon's intake from a background thread.

    Create one at startup and share it; it is thread-safe::

        client = Client("https://sessionmon.example", token, app="shop")

    Plain ``http://`` is refused except to this machine: the token is a
    bearer credential (``allow_insecure_http=True`` overrides).

    ``send`` validates an event and queues it without blocking. The thread
    posts batches of up to 1000 events (1 MiB) as NDJSON to
    ``POST {url}/v1/events``. Network errors, 429, 503 and other 5xx
    responses are retried with exponential backoff and jitter (honouring
    Retry-After) for as long as the client is open; retries reuse event
    ids, so the intake never stores an event twice. Events the intake
    rejects, and all events of a request refused as a whole (401, 400), are
    not retried: they go to ``on_error`` as a DeliveryError. So does every
    event refused because the queue (``max_queue`` events) is full: no event
    is lost silently. Without on_error, failures are logged to the
    "sessionmon" logger.

    ``on_error`` runs on the sender thread (or in ``send`` for a full
    queue): keep it short, and do not call ``flush`` or ``close`` from it.

    Call ``close`` at shutdown (it is also called at interpreter exit,
    waiting at most ``exit_timeout`` seconds).
    """

    def __init__(
        self,
        url: str,
        token: str,
        app: str,
        *,
        on_error: Optional[Callable[[DeliveryError], None]] = None,
        max_queue: int = 10000,
        batch_events: int = MAX_BATCH_EVENTS,
        batch_bytes: int = MAX_BATCH_BYTES,
        request_timeout: float = 10.0,
        retry_wait: float = 0.25,
        max_retry_wait: float = 30.0,
        exit_timeout: float = 5.0,
        allow_insecure_http: bool = False,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("sessionmon: url must start with http:// or https://")
        if url.startswith("http://") and not allow_insecure_http and not _is_loopback(url):
            raise ValueError(
                "sessionmon: url is plain http to a remote host, which would expose the token; "
                "use https or pass allow_insecure_http=True"
            )
        if not token:
            raise ValueError("sessionmon: an intake token is required")
        if not 1 <= batch_events <= MAX_BATCH_EVENTS:
            raise ValueError("sessionmon: batch_events must be 1-%d" % MAX_BATCH_EVENTS)
        if not MAX_EVENT_BYTES + 1 <= batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError("sessionmon: batch_bytes must be %d-%d" % (MAX_EVENT_BYTES + 1, MAX_BATCH_BYTES))
        if max_queue < 1 or retry_wait <= 0 or max_retry_wait < retry_wait:
            raise ValueError("sessionmon: need max_queue >= 1 and 0 < retry_wait <= max_retry_wait")
        self._endpoint = url.rstrip("/") + "/v1/events"
        self._auth = "Bearer " + token
        self._app = app
        self._on_error = on_error
        self._max_queue = max_queue
        self._batch_events = batch_events
        self._batch_bytes = batch_bytes
        self._request_timeout = request_timeout
        self._retry_wait = retry_wait
        self._max_retry_wait = max_retry_wait
        self._exit_timeout = exit_timeout

        # _cond guards every field below; on_error is never called with it held.
        self._cond = threading.Condition()
        self._queue: Deque[_Entry] = collections.deque()
        self._inflight: List[_Entry] = []
        self._next_seq = 0
        self._done_seq = 0  # every event with seq < _done_seq is resolved
        self._resolved: set = set()  # seqs resolved out of order (split batches)
        self._closing = False
        self._abandon = False
        self._summary: Optional[Summary] = None
        self._counts: Dict[str, int] = {"accepted": 0, "duplicates": 0, "rejected": 0, "failed": 0}

        self._thread = threading.Thread(target=self._run, name="sessionmon-sender", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    @property
    def app(self) -> str:
        """The app name every event must carry (the intake token's app)."""
        return self._app

    def send(self, event: Mapping[str, Any]) -> bool:
        """Queue event (a dict from the builders in sessionmon.events) and
        return at once. It raises EventError for an invalid event or one of
        another app, and returns False when the event was refused because
        the queue is full or the client is closed (on_error is told)."""
        validate(event)
        if event["app"] != self._app:
            raise EventError("app", "must be the client's app %r" % self._app)
        line = encode(event)
        with self._cond:
            if self._closing:
                err = DeliveryError("undelivered", "client is closed", [event["id"]])
            elif len(self._queue) >= self._max_queue:
                self._counts["failed"] += 1
                err = DeliveryError("overflow", "queue full (%d events)" % self._max_queue, [event["id"]])
            else:
                self._queue.append(_Entry(self._next_seq, event["id"], line))
                self._next_seq += 1
                self._cond.notify_all()
                return True
        self._report(err)
        return False

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until every event queued before the call is stored or failed
        for good; return False if ``timeout`` seconds passed first."""
        with self._cond:
            target = self._next_seq
            return self._cond.wait_for(lambda: self._done_seq >= target, timeout)

    def stats(self) -> Summary:
        """The counts so far."""
        with self._cond:
            return self._snapshot()

    def close(self, timeout: float = 10.0) -> Summary:
        """Stop taking events, deliver what is queued (retrying for at most
        ``timeout`` seconds), end the thread and return the Summary. Events
        still unsent when the time is up count as failed and go to on_error.
        Calling close again returns the same Summary."""
        with self._cond:
            if self._summary is not None:
                return self._summary
            self._closing = True
            self._cond.notify_all()
        try:
            atexit.unregister(self._at_exit)
        except Exception:  # pragma: no cover - interpreter shutting down
            pass
        self._thread.join(max(timeout, 0))
        if self._thread.is_alive():
            with self._cond:
                self._abandon = True
                self._cond.notify_all()
            # The sender gives up at its next step; a request under way
            # ends within its own timeout.
            self._thread.join(self._request_timeout + 1)
        with self._cond:
            left = [e for e in list(self._inflight) + list(self._queue) if self._unresolved(e)]
        if left:
            self._resolve(left, "failed", DeliveryError("undelivered", "not sent before close's timeout", [e.id for e in left]))
        with self._cond:
            self._summary = self._snapshot()
            return self._summary

    def _at_exit(self) -> None:
        self.close(self._exit_timeout)

    def _snapshot(self) -> Summary:
        c = self._counts
        queued = self._next_seq - self._done_seq - len(self._resolved)
        return Summary(c["accepted"], c["duplicates"], c["rejected"], c["failed"], max(queued, 0))

    # Sender thread.

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if self._abandon or (self._closing and not self._queue):
                    return
                batch = self._take()
                # Kept after delivery too: close skips resolved entries.
                self._inflight = batch
            try:
                self._deliver(batch)
            except Exception as exc:  # never let the thread die with events held
                _log.exception("sessionmon: sender error")
                self._resolve(batch, "failed", DeliveryError("undelivered", "sender error: %s" % type(exc).__name__, [e.id for e in batch]))

    def _take(self) -> List[_Entry]:
        batch: List[_Entry] = []
        size = 0
        while self._queue and len(batch) < self._batch_events:
            n = len(self._queue[0].line) + 1
            if batch and size + n > self._batch_bytes:
                break
            batch.append(self._queue.popleft())
            size += n
        return batch

    def _deliver(self, batch: List[_Entry]) -> None:
        parts = [batch]
        while parts:
            part = parts.pop(0)
            attempt = 0
            while True:
                with self._cond:
                    if self._abandon:
                        return
                try:
                    status, body = self._post(part)
                except _Retry as r:
                    # Retry-After is a floor: a long outage still backs off.
                    wait = max(r.after or 0.0, self._backoff(attempt))
                    attempt += 1
                    _log.debug("sessionmon: retrying batch", extra={"reason": str(r), "wait_s": wait})
                    with self._cond:
                        self._cond.wait_for(lambda: self._abandon, wait)
                    continue
                if status == 202:
                    self._settle(part, body)
                elif status == 413 and len(part) > 1:
                    half = len(part) // 2
                    parts[0:0] = [part[:half], part[half:]]
                else:
                    kind = "unauthorized" if status == 401 else "refused"
                    msg = "HTTP %d: %s" % (status, _error_text(body))
                    self._resolve(part, "failed", DeliveryError(kind, msg, [e.id for e in part], status=status))
                break

    def _backoff(self, attempt: int) -> float:
        cap = min(self._max_retry_wait, self._retry_wait * (2 ** min(attempt, 30)))
        return random.uniform(cap / 2, cap)

    def _post(self, part: List[_Entry]) -> Tuple[int, Any]:
        body = b"".join(e.line + b"\n" for e in part)
        req = urllib.request.Request(self._endpoint, data=body, method="POST", headers={
            "Authorization": self._auth,
            "Content-Type": "application/x-ndjson",
            "User-Agent": "sessionmon-python/" + _VERSION,
        })
        try:
            with urllib.request.urlopen(req, timeout=self._request_timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, _read(e)
            if status in (429, 503) or status >= 500:
                raise _Retry("HTTP %d" % status, _retry_after(e.headers.get("Retry-After")))
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise _Retry("network: %s" % type(e).__name__)
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            parsed = None
        if status == 202 and not _valid_results(parsed, len(part)):
            # Nothing says what was stored; resending is safe (same ids).
            raise _Retry("unreadable 202 response")
        return status, parsed

    def _settle(self, part: List[_Entry], body: Mapping[str, Any]) -> None:
        ok: Dict[str, List[_Entry]] = {"accepted": [], "duplicates": []}
        rejected: List[Tuple[_Entry, Mapping[str, Any]]] = []
        for r in body["results"]:
            e = part[r["index"]]
            if r["status"] == "accepted":
                ok["accepted"].append(e)
            elif r["status"] == "duplicate":
                ok["duplicates"].append(e)
            else:
                rejected.append((e, r))
        for outcome, entries in ok.items():
            self._resolve(entries, outcome, None)
        for e, r in rejected:
            fields = [f for f in r.get("fields") or [] if isinstance(f, str)]
            self._resolve([e], "rejected", DeliveryError("rejected", str(r.get("error") or "rejected"), [e.id], status=202, fields=fields))

    def _unresolved(self, e: _Entry) -> bool:
        return e.seq >= self._done_seq and e.seq not in self._resolved

    def _resolve(self, entries: List[_Entry], outcome: str, err: Optional[DeliveryError]) -> None:
        with self._cond:
            fresh = [e for e in entries if self._unresolved(e)]
            self._counts[outcome] += len(fresh)
            self._resolved.update(e.seq for e in fresh)
        # Report before waking flush, so on_error has run when flush returns.
        if err is not None and fresh:
            self._report(err)
        with self._cond:
            while self._done_seq in self._resolved:
                self._resolved.discard(self._done_seq)
                self._done_seq += 1
            self._cond.notify_all()

    def _report(self, err: DeliveryError) -> None:
        if self._on_error is None:
            _log.warning("%s (%d events)", err, len(err.event_ids))
            return
        try:
            self._on_error(err)
        except Exception:
            _log.exception("sessionmon: on_error callback raised")


def _read(resp: Any) -> bytes:
    try:
        return resp.read()
    except Exception:
        return b""


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a Retry-After header (seconds or an HTTP
    date), capped at ten minutes; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), 600.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), 600.0)


def _valid_results(body: Any, n: int) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return False
    seen = set()
    for r in body["results"]:
        if not isinstance(r, dict) or r.get("status") not in ("accepted", "duplicate", "rejected"):
            return False
        i = r.get("index")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n or i in seen:
            return False
        seen.add(i)
    return len(seen) == n


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:200]
    return "no error message"
