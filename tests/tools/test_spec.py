"""hubkv.config.open_spec: profiles, driver names, DRIVER:NAME=VALUE."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import hubkv
import hubkv.config
import hubkv.tools
from hubkv.config import open_spec
from hubkv.drivers.sqlite import SQLiteDriver

PYPROJECT = """
[tool.hubkv]
driver = "memory"

[tool.hubkv.profiles.local]
driver = "fs-lite"
path = "data/app.sqlite3"
timeout = 5

[tool.hubkv.profiles.memory]
driver = "fs-lite"
path = "shadowed.sqlite3"

[tool.hubkv.profiles.secret]
driver = "fs-lite"
path = "${SECRET_DIR}/kv.sqlite3"
read_only = true

[tool.hubkv.profiles.broken]
path = "no driver here"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "sub").mkdir()
    return tmp_path


def sqlite_driver(store: hubkv.KV) -> SQLiteDriver:
    assert isinstance(store.driver, SQLiteDriver)
    return store.driver


def test_profile_paths_are_relative_to_the_pyproject(project: Path) -> None:
    store = open_spec("local", cwd=project / "sub", environ={})
    driver = sqlite_driver(store)
    assert driver.path == project / "data" / "app.sqlite3"
    assert driver.timeout == 5.0


def test_a_profile_wins_over_a_driver_of_the_same_name(project: Path) -> None:
    assert open_spec("memory", cwd=project, environ={}).driver.name == "fs-lite"
    assert open_spec("memory:", cwd=project, environ={}).driver.name == "memory"


def test_environment_references_in_profiles(project: Path) -> None:
    store = open_spec("secret", cwd=project, environ={"SECRET_DIR": str(project / "vault")})
    assert sqlite_driver(store).path == project / "vault" / "kv.sqlite3"
    assert store.is_read_only
    with pytest.raises(hubkv.ConfigError, match=r"uses \$\{SECRET_DIR\} but .* is not set"):
        open_spec("secret", cwd=project, environ={})


def test_driver_with_options_are_converted_by_annotation(tmp_path: Path) -> None:
    store = open_spec(
        f"fs-lite:path={tmp_path / 'x.sqlite3'},timeout=2.5,synchronous=full,max_value_bytes=64",
        cwd=tmp_path,
        environ={},
    )
    driver = sqlite_driver(store)
    assert (driver.timeout, driver.synchronous) == (2.5, "full")
    with pytest.raises(hubkv.ValueTooLargeError):
        store.set("k", "x" * 100)


def test_bad_specs_are_config_errors_that_never_show_option_values(project: Path) -> None:
    bad = {
        "": "got an empty string",
        "nothing-by-this-name": "not a profile",
        "broken": 'driver = "NAME"',
        "fs-lite:token=hunter2": "unknown option(s) token",
        "fs-lite:hunter2": "NAME=VALUE separated by commas",
        "no-driver:path=hunter2": "unknown driver",
    }
    for spec, message in bad.items():
        with pytest.raises(hubkv.ConfigError) as caught:
            open_spec(spec, cwd=project, environ={})
        assert message in str(caught.value), spec
        assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("target", [hubkv.tools, hubkv.config.open_spec])
def test_docstring_examples(target: object) -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(target, globs=vars(hubkv.config) if callable(target) else None)
    assert sum(len(test.examples) for test in tests) > 3
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


def test_a_read_only_spec_opens_fs_lite_read_only(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "kv.sqlite3"
    store = open_spec(f"fs-lite:path={missing},read_only=true")
    with pytest.raises(hubkv.DriverError, match="no such file"):
        store.get("a")
    assert not missing.parent.exists()  # nothing created
    path = tmp_path / "kv.sqlite3"
    hubkv.KV("fs-lite", path=str(path)).set("a", 1)
    reader = open_spec(f"fs-lite:path={path},read_only=true")
    assert reader.get("a") == 1 and reader.driver.read_only  # type: ignore[attr-defined]
