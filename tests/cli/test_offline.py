"""validate --offline: for pre-commit hooks and pull requests from forks, where no secret is
set. A ${VAR} that is not set is no error; everything else is checked as online."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import BaseModel

from providers.reference import ReferenceProvider
from reconciler.cli import cli
from reconciler.cli_state import State
from reconciler.provider import ProviderContext
from reconciler.registry import Registry, load_registry

UNSET = {
    name: None for name in ("CM_API_KEY", "CM_CLIENT_ID", "CM_URL", "MW_URL", "MW_KEY", "N", "RPS")
}

CONFIG = """\
version: 1
targets:
  local: {provider: reference, path: state.db}
  news:
    provider: campaignmonitor
    api_key: ${CM_API_KEY}
    client_id: ${CM_CLIENT_ID}
    base_url: ${CM_URL}
    max_concurrency: ${N}
    requests_per_second: ${RPS}
  mw:
    provider: mailwizz
    base_url: ${MW_URL}
    api_key: ${MW_KEY}
    max_segment_conditions: 4
defaults: {target: local}
lists:
  - name: News
    segments:
      - name: Gmail
        rules: [{field: email, op: contains, value: "@gmail.com"}]
  - name: Weekly
    target: news
    segments:
      - name: Price $${NOT_A_VARIABLE}
        rules: [{field: email, op: contains, value: "@x.com"}]
  - name: Shop
    target: mw
    segments:
      - name: Four
        rules:
          - {field: email, op: contains, value: a}
          - {field: email, op: contains, value: b}
          - {field: email, op: contains, value: c}
          - {field: email, op: contains, value: d}
"""


def _validate(
    path: Path,
    *args: str,
    env: Mapping[str, str | None] | None = None,
    registry: Registry | None = None,
) -> Result:
    return CliRunner().invoke(
        cli,
        ["-c", str(path), "validate", *args],
        env={**UNSET, **(env or {})},
        obj=State(registry=registry),
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "reconciler.yaml"
    path.write_text(CONFIG)
    return path


def test_online_validate_needs_every_variable(config: Path) -> None:
    result = _validate(config)
    assert result.exit_code == 1
    for name in ("CM_API_KEY", "CM_CLIENT_ID", "CM_URL", "MW_URL", "MW_KEY", "N", "RPS"):
        assert f"environment variable {name} is not set" in result.stderr


def test_offline_validate_needs_none_and_says_what_it_did_not_check(config: Path) -> None:
    result = _validate(config, "--offline")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Configuration is valid: 3 list(s), 3 segment(s), 3 target(s).\n"
    assert result.stderr == (
        "Note: checked offline; not set, so the values using them were not checked: "
        "CM_API_KEY, CM_CLIENT_ID, CM_URL, MW_KEY, MW_URL, N, RPS\n"
    )


def test_offline_with_every_variable_set_is_the_online_check(config: Path) -> None:
    env = {
        "CM_API_KEY": "k" * 32,
        "CM_CLIENT_ID": "c" * 32,
        "CM_URL": "https://api.createsend.com/api/v3.3",
        "MW_URL": "https://mail.example.com/api",
        "MW_KEY": "m" * 40,
        "N": "4",
        "RPS": "2",
    }
    # ${VAR} is text: max_concurrency: ${N} is an error online and offline alike once set
    online, offline = _validate(config, env=env), _validate(config, "--offline", env=env)
    assert online.exit_code == offline.exit_code == 1
    assert online.stderr == offline.stderr
    assert '"max_concurrency" must be an integer, not text' in offline.stderr


def test_a_set_value_is_still_checked_offline(config: Path) -> None:
    result = _validate(config, "--offline", env={"CM_URL": "ftp://nowhere"})
    assert result.exit_code == 1
    assert "reconciler.yaml:8:5: base_url must be an http:// or https:// URL" in result.stderr
    assert "CM_URL" not in result.stderr  # neither its value nor a note: it was checked


def test_an_unknown_key_is_an_error_whatever_its_value(config: Path) -> None:
    config.write_text(CONFIG.replace("api_key: ${MW_KEY}", "api_kye: ${MW_KEY}"))
    result = _validate(config, "--offline")
    assert result.exit_code == 1
    assert 'unknown key "api_kye" (did you mean "api_key"?)' in result.stderr


def test_settings_that_are_written_out_still_shape_the_checks(config: Path) -> None:
    config.write_text(CONFIG.replace("max_segment_conditions: 4", "max_segment_conditions: 3"))
    result = _validate(config, "--offline")
    assert result.exit_code == 1
    assert (
        'segment "Four" cannot be stored by provider "mailwizz": the rules need 4 conditions, '
        "more than this provider's limit of 3" in result.stderr
    )


def test_a_variable_set_to_nothing_is_the_value_nothing(config: Path) -> None:
    result = _validate(config, "--offline", env={"MW_KEY": ""})
    assert result.exit_code == 1
    assert "api_key" in result.stderr and "MW_KEY" not in result.stderr


class NeverBuilt(ReferenceProvider):
    """A provider that fails the test if validate ever builds it (to connect, say)."""

    def __init__(self, target: str, settings: BaseModel, context: ProviderContext) -> None:
        raise AssertionError("validate built a provider")


@pytest.mark.parametrize("args", [(), ("--offline",)])
def test_validate_never_builds_a_provider(config: Path, args: tuple[str, ...]) -> None:
    registry: dict[str, Any] = {**load_registry(), "reference": NeverBuilt}
    env = {name: "x" * 32 for name in UNSET if name not in ("N", "RPS", "CM_URL", "MW_URL")}
    config.write_text(
        CONFIG.replace("${N}", "4")
        .replace("${RPS}", "2")
        .replace("${CM_URL}", "https://a.b")
        .replace("${MW_URL}", "https://c.d/api")
    )
    result = _validate(config, *args, env=env, registry=registry)
    assert result.exit_code == 0, result.output


def test_the_pre_commit_hook_runs_it_in_the_configuration_directory(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(config.parent)
    result = CliRunner().invoke(cli, ["validate", "--offline"], env=UNSET)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Configuration is valid")
