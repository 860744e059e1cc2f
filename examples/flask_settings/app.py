"""The settings example as a Flask app.

Run it (the store is fs-lite at ``.data/kv.sqlite3`` unless configured)::

    flask --app app run
    gunicorn --workers 4 app:app
    curl -X PUT -H 'Content-Type: application/json' -d '{"theme": "dark"}' localhost:5000/settings
    curl localhost:5000/settings

Configure the store with ``HUBKV_DRIVER``/``HUBKV_PATH``, ``[tool.hubkv]`` in
``pyproject.toml``, or ``FLASK_HUBKV='{"driver": "fs-lite", "path": "data/kv.sqlite3"}'``
(``app.config["HUBKV"]``, read by :class:`hubkv.contrib.flask.HubKV`).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from hubkv import InvalidKeyError, SerializationError, ValueTooLargeError, kv
from hubkv.contrib.flask import HubKV


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app; ``config`` updates ``app.config`` (e.g. ``{"HUBKV": {"driver": "memory"}}``)."""
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    HubKV(app)

    @app.put("/settings")
    def save_settings() -> ResponseReturnValue:
        kv.set("settings", request.get_json())
        return {"ok": True}

    @app.get("/settings")
    def read_settings() -> ResponseReturnValue:
        return {"settings": kv.get("settings")}

    # A prefixed view: each user's keys live under "users:<id>:".
    @app.put("/users/<user_id>/prefs")
    def save_prefs(user_id: str) -> ResponseReturnValue:
        kv.prefixed(f"users:{user_id}:").set("prefs", request.get_json())
        return {"ok": True}

    @app.get("/users/<user_id>/prefs")
    def read_prefs(user_id: str) -> ResponseReturnValue:
        return {"prefs": kv.prefixed(f"users:{user_id}:").get("prefs")}

    # Bad input (an unusable user id, a value JSON can't hold, a huge value)
    # is the client's mistake: say what is wrong, with a 400.
    @app.errorhandler(InvalidKeyError)
    @app.errorhandler(SerializationError)
    @app.errorhandler(ValueTooLargeError)
    def bad_input(error: Exception) -> ResponseReturnValue:
        return jsonify(error=str(error)), 400

    return app


app = create_app()
