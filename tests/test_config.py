"""Configuration layers, option checks and the default store proxy."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubkv
from hubkv import ConfigError
from hubkv.config import resolve
from hubkv.drivers import available, driver_class, register
from hubkv.drivers.memory import MemoryDriver
from hubkv.drivers.sqlite import SQLiteDriver


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No HUBKV_* or host credential variables, and an empty working directory."""
    for name in list(os.environ):
        if name.startswith(("HUBKV_", "UPSTASH_", "KV_", "CLOUDFLARE_", "REDIS_URL")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_default_is_fs_lite_under_the_current_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hubkv"):
        resolved = resolve(None, {})
    assert isinstance(resolved.driver, SQLiteDriver)
    assert resolved.driver.path == tmp_path / ".data" / "kv.sqlite3"
    assert "default" in resolved.reason
    assert "fs-lite" in caplog.text and "default" in caplog.text


def test_arguments_win_over_everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUBKV_DRIVER", "fs-lite")
    (tmp_path / "pyproject.toml").write_text('[tool.hubkv]\ndriver = "fs-lite"\n')
    assert isinstance(resolve("memory", {}).driver, MemoryDriver)


def test_environment_layer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUBKV_DRIVER", "fs-lite")
    monkeypatch.setenv("HUBKV_PATH", str(tmp_path / "env.sqlite3"))
    monkeypatch.setenv("HUBKV_TIMEOUT", "2.5")
    monkeypatch.setenv("HUBKV_READ_ONLY", "yes")
    (tmp_path / "pyproject.toml").write_text('[tool.hubkv]\ndriver = "memory"\n')
    resolved = resolve(None, {})
    assert isinstance(resolved.driver, SQLiteDriver)
    assert resolved.driver.path == tmp_path / "env.sqlite3"
    assert resolved.driver.timeout == 2.5
    assert resolved.read_only is True
    assert resolved.reason == "HUBKV_DRIVER is set"


def test_environment_values_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBKV_DRIVER", "fs-lite")
    monkeypatch.setenv("HUBKV_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="timeout must be a number"):
        resolve(None, {})
    monkeypatch.setenv("HUBKV_TIMEOUT", "1")
    monkeypatch.setenv("HUBKV_READ_ONLY", "maybe")
    with pytest.raises(ConfigError, match="read_only must be true or false"):
        resolve(None, {})
    monkeypatch.delenv("HUBKV_READ_ONLY")
    monkeypatch.setenv("HUBKV_COLOUR", "blue")
    with pytest.raises(ConfigError, match="unknown option.*colour.*valid options: "):
        resolve(None, {})


def test_environment_options_without_a_driver_are_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUBKV_PATH", "data/app.sqlite3")
    with pytest.raises(ConfigError, match="HUBKV_PATH set but HUBKV_DRIVER is not"):
        resolve(None, {})
    assert isinstance(resolve("memory", {}).driver, MemoryDriver)  # arguments still win


def test_pyproject_layer_with_relative_path(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.hubkv]\ndriver = "fs-lite"\npath = "data/app.sqlite3"\nmax_value_bytes = 1000\n'
        '[tool.hubkv.profiles.backup]\ndriver = "memory"\n'
    )
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    os.chdir(sub)
    resolved = resolve(None, {})
    assert isinstance(resolved.driver, SQLiteDriver)
    assert resolved.driver.path == tmp_path / "data" / "app.sqlite3"
    assert resolved.max_value_bytes == 1000
    assert "pyproject.toml" in resolved.reason


def test_pyproject_without_a_driver_falls_through(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.hubkv]\n')
    assert "default" in resolve(None, {}).reason


def test_broken_pyproject_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.hubkv\n")
    with pytest.raises(ConfigError, match="pyproject.toml"):
        resolve(None, {})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tool.hubkv]\ndriver = "fs-lite"\npath = 5\n', "option path must be a string"),
        ('[tool.hubkv]\ndriver = "upstash"\nurl = ["x"]\ntoken = "t"\n', "option url must be a string"),
        ("tool = 5\n", "must be a table"),
        ("[tool]\nhubkv = 5\n", "must be a table"),
    ],
)
def test_pyproject_values_of_the_wrong_type_are_config_errors(
    tmp_path: Path, toml: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        hubkv.KV()


def test_unknown_driver_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        hubkv.KV("fs-heavy")
    assert "fs-heavy" in str(info.value)
    for name in ("fs-lite", "memory"):
        assert name in str(info.value)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        hubkv.KV("fs-lite", pth="x.sqlite3")
    message = str(info.value)
    assert "pth" in message and "path" in message and "read_only" in message


def test_options_without_a_driver_are_refused() -> None:
    with pytest.raises(ConfigError, match="without a driver"):
        hubkv.KV(path="x.sqlite3")


def test_store_options_apply_to_any_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBKV_DRIVER", "memory")
    store = hubkv.KV(read_only=True, max_value_bytes=10)
    assert store.is_read_only
    assert isinstance(store.driver, MemoryDriver)
    with pytest.raises(ConfigError, match="max_value_bytes"):
        hubkv.KV("memory", max_value_bytes=0)
    with pytest.raises(ConfigError, match="must be a whole number"):
        hubkv.KV("memory", max_value_bytes="lots")


@pytest.mark.parametrize("value", [1.5, float("inf"), float("nan"), "1.5", "inf", "NaN", True])
def test_int_options_take_whole_finite_numbers_only(value: object) -> None:
    with pytest.raises(ConfigError, match="max_value_bytes must be a whole number"):
        hubkv.KV("memory", max_value_bytes=value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "nan", "-inf", "soon", None, True])
def test_float_options_take_finite_numbers_only(value: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timeout must be a number"):
        hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"), timeout=value)


def test_whole_floats_and_number_strings_are_converted(tmp_path: Path) -> None:
    assert hubkv.KV("memory", max_value_bytes=1000.0).max_value_bytes == 1000
    assert hubkv.KV("memory", max_value_bytes=" 1e3 ").max_value_bytes == 1000
    store = hubkv.KV("fs-lite", path=str(tmp_path / "kv.sqlite3"), timeout="2")
    assert store.driver.timeout == 2.0  # type: ignore[attr-defined]


def test_a_driver_instance_can_be_passed() -> None:
    driver = MemoryDriver()
    store = hubkv.KV(driver)
    store.set("a", 1)
    assert hubkv.KV(driver).get("a") == 1
    with pytest.raises(ConfigError):
        hubkv.KV(driver, path="x")


def test_registered_drivers_and_entry_points() -> None:
    class Custom(MemoryDriver):
        name = "custom"

    register("custom-test", Custom)
    assert "custom-test" in available()
    assert driver_class("custom-test") is Custom
    register("custom-lazy", "hubkv.drivers.memory:MemoryDriver")
    assert driver_class("custom-lazy") is MemoryDriver
    register("custom-broken", "hubkv.no_such_module:Driver")
    with pytest.raises(ConfigError, match="not installed"):
        driver_class("custom-broken")
    register("custom-wrong", "hubkv.store:KV")
    with pytest.raises(ConfigError, match="not a hubkv Driver"):
        driver_class("custom-wrong")


def test_default_store_proxy_follows_configure() -> None:
    first = hubkv.configure("memory")
    from hubkv import kv

    kv.set("settings", {"theme": "system"})
    assert first.get("settings") == {"theme": "system"}
    assert kv["settings"] == {"theme": "system"}
    assert "settings" in kv
    second = hubkv.configure("memory")
    assert "settings" not in kv
    kv["x"] = 1
    assert second.get("x") == 1
    del kv["x"]
    assert "memory" in repr(kv)


def test_default_store_proxy_is_a_context_manager() -> None:
    hubkv.configure("memory")
    with hubkv.kv as store:
        store.set("a", 1)
    assert hubkv.kv.get("a") == 1  # closed, and reopened on use


def test_default_store_is_configured_lazily(tmp_path: Path) -> None:
    hubkv.kv._replace(None)  # type: ignore[attr-defined]
    assert "not configured" in repr(hubkv.kv)
    hubkv.kv.set("a", 1)
    assert (tmp_path / ".data" / "kv.sqlite3").is_file()
    hubkv.configure("memory")
