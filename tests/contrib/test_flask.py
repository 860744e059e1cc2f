"""The Flask extension and the Flask example, through Flask's test client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import hubkv
from hubkv import kv
from hubkv.contrib.flask import HubKV, current_kv

from .conftest import load_example, run_in_threads

ROOT = Path(__file__).resolve().parents[2]


def make_app(config: Any) -> Flask:
    app = Flask(__name__)
    app.config["HUBKV"] = config

    @app.put("/items/<key>")
    def put_item(key: str) -> dict[str, Any]:
        from flask import request

        kv.set(key, request.get_json())
        return {"ok": True}

    @app.get("/items/<key>")
    def get_item(key: str) -> dict[str, Any]:
        return {"value": kv.get(key), "current": current_kv.get(key)}

    HubKV(app)
    return app


def test_views_use_the_store_named_by_app_config(tmp_path: Path) -> None:
    path = tmp_path / "data" / "kv.sqlite3"
    app = make_app({"driver": "fs-lite", "path": str(path)})
    client = app.test_client()

    assert client.put("/items/greeting", json={"text": "hello"}).get_json() == {"ok": True}
    assert client.get("/items/greeting").get_json() == {
        "value": {"text": "hello"},
        "current": {"text": "hello"},
    }
    # The data is in that file: another store on the same path reads it.
    assert hubkv.KV("fs-lite", path=str(path)).get("greeting") == {"text": "hello"}
    assert app.extensions["hubkv"].driver.describe() == str(path)


def test_without_hubkv_config_the_default_resolution_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKV_DRIVER", "fs-lite")
    monkeypatch.setenv("HUBKV_PATH", str(tmp_path / "from-env.sqlite3"))
    app = make_app(None)

    app.test_client().put("/items/a", json=[1, 2])

    assert hubkv.KV("fs-lite", path=str(tmp_path / "from-env.sqlite3")).get("a") == [1, 2]
    assert app.extensions["hubkv"] is hubkv.kv


def test_init_app_pattern_and_store_property() -> None:
    extension = HubKV()
    with pytest.raises(RuntimeError, match="init_app"):
        _ = extension.store
    app = Flask(__name__)
    app.config["HUBKV"] = {"driver": "memory"}
    extension.init_app(app)

    extension.store.set("x", 1)
    assert kv.get("x") == 1
    assert app.extensions["hubkv"] is extension.store


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("fs-lite", 'app.config\\["HUBKV"\\] must be a dict'),
        ({"path": "kv.sqlite3"}, "no 'driver'"),
        ({"driver": "no-such-driver"}, "unknown driver 'no-such-driver'"),
        ({"driver": "memory", "token": "s3cret-token"}, "unknown option"),
    ],
)
def test_bad_config_raises_config_error_at_init(config: Any, message: str) -> None:
    app = Flask(__name__)
    app.config["HUBKV"] = config
    with pytest.raises(hubkv.ConfigError, match=message) as caught:
        HubKV(app)
    assert "s3cret-token" not in str(caught.value)
    assert "hubkv" not in app.extensions


def test_each_app_has_its_store_in_current_kv() -> None:
    first = make_app({"driver": "memory"})
    second = make_app({"driver": "memory"})
    first.extensions["hubkv"].set("who", "first")
    second.extensions["hubkv"].set("who", "second")

    with first.app_context():
        assert current_kv.get("who") == "first"
    with second.app_context():
        assert current_kv.get("who") == "second"
    # hubkv.kv is one store per process: the last configured app's.
    assert kv.get("who") == "second"
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="no hubkv store"):
        current_kv.get("who")


def test_the_store_stays_usable_across_requests_from_many_threads(tmp_path: Path) -> None:
    """Requests end with teardown_appcontext; the shared store must not be closed there."""
    app = make_app({"driver": "fs-lite", "path": str(tmp_path / "kv.sqlite3")})
    failures: list[str] = []

    def work(thread: int) -> None:
        client = app.test_client()
        for n in range(40):
            key = f"t{thread}-{n}"
            stored = client.put(f"/items/{key}", json=n).status_code == 200
            if not stored or client.get(f"/items/{key}").get_json()["value"] != n:
                failures.append(key)

    run_in_threads(work, 6)

    assert failures == []
    assert len(kv.keys()) == 6 * 40


def test_close_releases_and_the_store_reopens(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config["HUBKV"] = {"driver": "fs-lite", "path": str(tmp_path / "kv.sqlite3")}
    extension = HubKV(app)
    kv.set("kept", True)
    extension.close()
    assert kv.get("kept") is True


CLOSE_AT_EXIT = """
from flask import Flask

from hubkv import kv
from hubkv.contrib.flask import HubKV
from hubkv.drivers import register
from hubkv.drivers.memory import MemoryDriver


class Closing(MemoryDriver):
    def close(self):
        print("closed", flush=True)


register("closing", Closing)
app = Flask(__name__)
app.config["HUBKV"] = {"driver": "closing"}
HubKV(app)


@app.get("/")
def count():
    kv.set("n", kv.get("n", 0) + 1)
    return str(kv.get("n"))


client = app.test_client()
print(*(client.get("/").text for _ in range(3)), flush=True)
print("exiting", flush=True)
"""


def test_the_store_is_closed_at_interpreter_exit_not_per_request() -> None:
    """What the README's Flask "Lifecycle" paragraph promises."""
    done = subprocess.run(
        [sys.executable, "-c", CLOSE_AT_EXIT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 2 3", "exiting", "closed"]


# -- the example app ---------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Flask:
    module = load_example("flask_settings/app.py", "flask_settings_example")
    app: Flask = module.create_app(
        {"HUBKV": {"driver": "fs-lite", "path": str(tmp_path / "kv.sqlite3")}}
    )
    return app


def test_example_settings_round_trip(example: Flask) -> None:
    client = example.test_client()
    assert client.get("/settings").get_json() == {"settings": None}

    response = client.put("/settings", json={"theme": "dark", "font": 14})

    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    assert client.get("/settings").get_json() == {"settings": {"theme": "dark", "font": 14}}
    assert kv.get("settings") == {"theme": "dark", "font": 14}


def test_example_prefs_live_under_each_users_prefix(example: Flask) -> None:
    client = example.test_client()
    client.put("/users/42/prefs", json={"lang": "en"})
    client.put("/users/7/prefs", json={"lang": "fr"})

    assert client.get("/users/42/prefs").get_json() == {"prefs": {"lang": "en"}}
    assert client.get("/users/7/prefs").get_json() == {"prefs": {"lang": "fr"}}
    assert client.get("/users/8/prefs").get_json() == {"prefs": None}
    assert kv.keys() == ["users:42:prefs", "users:7:prefs"]


def test_example_refuses_bad_input_with_400_and_writes_nothing(example: Flask) -> None:
    client = example.test_client()

    bad_id = client.put("/users/a%01b/prefs", json={"lang": "en"})
    not_json_storable = client.put(
        "/settings", data="[NaN]", headers={"Content-Type": "application/json"}
    )
    not_json = client.put("/settings", data="theme=dark")

    assert bad_id.status_code == 400
    assert "control character" in bad_id.get_json()["error"]
    assert not_json_storable.status_code == 400
    assert "NaN" in not_json_storable.get_json()["error"]
    assert not_json.status_code == 415
    assert kv.keys() == []
