"""Flask integration: configure hubkv from ``app.config["HUBKV"]``.

>>> from flask import Flask
>>> from hubkv import kv
>>> from hubkv.contrib.flask import HubKV
>>> app = Flask(__name__)
>>> app.config["HUBKV"] = {"driver": "memory"}
>>> hubkv_ext = HubKV(app)
>>> @app.get("/settings")
... def read_settings() -> dict:
...     return {"settings": kv.get("settings")}
>>> kv.set("settings", {"theme": "dark"})
>>> app.test_client().get("/settings").get_json()
{'settings': {'theme': 'dark'}}

``HUBKV`` is a dict: ``driver`` plus that driver's options, exactly the
arguments of :func:`hubkv.configure`. Without it, hubkv resolves its store as
usual (``HUBKV_*`` environment variables, ``[tool.hubkv]`` in
``pyproject.toml``, else fs-lite at ``.data/kv.sqlite3``).

Lifecycle: nothing happens per request. The store is opened lazily, per
thread and per process (so it is safe to create the app before gunicorn
forks its workers). It is *not* closed in ``teardown_appcontext``: Flask runs
that after every request, while other threads may still be using the store,
and a closed store would just reopen its connections on the next request.
The store ``HUBKV`` names is closed when the interpreter exits; without
``HUBKV`` the app uses ``hubkv.kv``, which is left open until the process
ends. Call :meth:`HubKV.close` to release connections earlier, e.g. at the
end of a test or when an app factory's app is discarded.

``from hubkv import kv`` is one store per process: with several apps in one
process, the last :meth:`~HubKV.init_app` wins. Use :data:`current_kv` (the
store of the app handling the request) when apps use different stores.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app
from werkzeug.local import LocalProxy

from ..store import KV
from ._common import configure_from_setting

__all__ = ["HubKV", "current_kv"]

EXTENSION_KEY = "hubkv"


class HubKV:
    """The Flask extension; ``HubKV(app)`` or ``HubKV()`` then :meth:`init_app`.

    After :meth:`init_app`, ``from hubkv import kv`` works in every view, and
    ``app.extensions["hubkv"]`` is the app's store.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._store: KV | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Configure the store from ``app.config["HUBKV"]`` and attach it to ``app``.

        Raises :class:`hubkv.ConfigError` when ``HUBKV`` names an unknown
        driver or option (before the app serves anything).
        """
        store = configure_from_setting(app.config.get("HUBKV"), 'app.config["HUBKV"]')
        app.extensions[EXTENSION_KEY] = store
        self._store = store

    @property
    def store(self) -> KV:
        """The store of the app this extension was last initialised with."""
        if self._store is None:
            raise RuntimeError("HubKV is not initialised: call HubKV(app) or init_app(app) first")
        return self._store

    def close(self) -> None:
        """Release the store's connections now (it reopens if used again)."""
        if self._store is not None:
            self._store.close()


def _current_store() -> KV:
    try:
        return cast(KV, current_app.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "this Flask app has no hubkv store: call HubKV(app) or init_app(app)"
        ) from None


#: The store of the current Flask app (like ``current_app``, only inside an app context).
current_kv: KV = cast(KV, LocalProxy(_current_store))
