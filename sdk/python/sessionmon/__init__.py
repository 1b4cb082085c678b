"""sessionmon: report pseudonymized session events to a sessionmon server.

At startup::

    import secrets, sessionmon
    p = sessionmon.Pseudonymizer("k1", key)          # key: 32+ secret bytes
    client = sessionmon.Client(url, token, app="shop")
    monitor = sessionmon.Monitor(client, p, sessionmon.RequestInspector(p, ["10.0.0.0/8"]))

In handlers, ``monitor.login(environ, user_id, session=sid, cookie={...})``,
``monitor.logout(...)`` and so on; wrap the app in WSGIMiddleware or
ASGIMiddleware to report session activity. User ids, session ids, device
ids, tokens and client addresses are pseudonymized with the key, which never
leaves the app; only pseudonyms, a network prefix and a keyed address hash
are sent.
"""

from .client import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, Client, DeliveryError, Summary
from .events import EventError, format_time, new_event_id, validate
from .middleware import ASGIMiddleware, WSGIMiddleware, cookie
from .monitor import Monitor
from .pseudonym import Pseudonymizer, address_prefix, network_prefix, parse_address
from .request import RequestInspector
from . import events

__version__ = "0.1.0"

__all__ = [
    "ASGIMiddleware",
    "Client",
    "DeliveryError",
    "EventError",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "Monitor",
    "Pseudonymizer",
    "RequestInspector",
    "Summary",
    "WSGIMiddleware",
    "address_prefix",
    "cookie",
    "events",
    "format_time",
    "network_prefix",
    "new_event_id",
    "parse_address",
    "validate",
]
