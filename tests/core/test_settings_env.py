"""Settings as a person writes them: the generated reference and .env.example stay in step with
the settings model, a .env file is read, and every wrong setting is one line naming it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.core.policy import REPO_ROOT
from bot.core.settings_env import (
    check_keys,
    env_example,
    load_settings,
    reference_markdown,
    setting_specs,
    settings_env,
)


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.upper().startswith("IB_")]:
        monkeypatch.delenv(key)


def test_the_settings_reference_in_the_docs_is_generated_from_the_model() -> None:
    written = (REPO_ROOT / "docs" / "settings.md").read_text()
    assert written == reference_markdown(), "run `incident-brief config --reference > docs/settings.md`"


def test_env_example_lists_every_setting_with_a_comment() -> None:
    written = (REPO_ROOT / ".env.example").read_text()
    assert written == env_example(), "run `incident-brief config --env-example > .env.example`"
    lines = written.splitlines()
    for spec in setting_specs():
        [index] = [i for i, line in enumerate(lines) if re.fullmatch(rf"(# )?{spec.env}=.*", line)]
        comment = lines[index - 1]
        assert comment.startswith("# "), spec.env
        assert not comment.startswith("# IB_"), f"{spec.env} has no description above it"


def test_every_setting_is_described_and_named_once() -> None:
    specs = setting_specs()
    names = [spec.env for spec in specs]
    assert len(names) == len(set(names))
    assert all(spec.description for spec in specs)
    assert {"IB_PAGERDUTY__WEBHOOK_SECRETS", "IB_DATADOG__APP_KEY", "IB_JIRA__USERNAME", "IB_LLM__OPENAI__API_KEY",
            "IB_LLM__ROUTES__BRIEF", "IB_SLACK__APP_TOKEN", "IB_LOG_FORMAT"} <= set(names)


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("IB_SLACK__BOT_TOKEN=xoxb-from-file\nIB_LOG_FORMAT=json\n"
                        "IB_PAGERDUTY__WEBHOOK_SECRETS='[\"one\", \"two\"]'\nIB_CATALOG_FILE=\n")
    monkeypatch.setenv("IB_LOG_FORMAT", "text")
    settings = load_settings(env_file)
    assert settings.slack.bot_token.get_secret_value() == "xoxb-from-file"
    assert settings.log_format == "text"
    assert [s.get_secret_value() for s in settings.pagerduty.webhook_secrets] == ["one", "two"]
    assert settings.catalog_file is None, "a blank value is not set"
    monkeypatch.delenv("IB_LOG_FORMAT")
    assert load_settings(tmp_path / "absent.env").slack.bot_token.get_secret_value() == ""


@pytest.mark.parametrize(("environ", "line"), [
    ({"IB_DATABASE_URL": "mysql://db/x"}, "IB_DATABASE_URL: not a database URL this bot can use ('mysql')"),
    ({"IB_DATABASE_URL": "postgresql:///x"}, "IB_DATABASE_URL: a PostgreSQL URL needs a host"),
    ({"IB_DATADOG__TOKN": "x"}, "IB_DATADOG__TOKN (from the environment): unknown setting; did you mean "
                                "IB_DATADOG__TOKEN?"),
    ({"IB_PAGERDUTY__WEBHOOK_SECRETS": "whsec"}, "IB_PAGERDUTY__WEBHOOK_SECRETS (from the environment): expected "
                                                 "a JSON list"),
    ({"IB_PAGERDUTY__WEBHOOK_SECRETS": '{"a": 1}'}, "IB_PAGERDUTY__WEBHOOK_SECRETS (from the environment): expected "
                                                    "a JSON list of strings"),
    ({"IB_LLM__PRICES": "[]"}, "IB_LLM__PRICES (from the environment): expected a JSON object"),
    ({"IB_LLM__ROUTES__SUMMARY": "openai:x@1"}, "IB_LLM__ROUTES__SUMMARY (from the environment): unknown setting"),
    ({"IB_DATADOG__TIMEOUT_S": "soon"}, "IB_DATADOG__TIMEOUT_S: Input should be a valid number"),
    ({"IB_LOG_FORMAT": "xml"}, "IB_LOG_FORMAT: Input should be 'text' or 'json'"),
    ({"IB_SLACK__SOCKET_MODE": "perhaps"}, "IB_SLACK__SOCKET_MODE: Input should be a valid boolean"),
])
def test_a_wrong_setting_is_one_line_naming_it(environ: dict[str, str], line: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path / "absent.env")
    [only] = str(refused.value).splitlines()
    assert only.startswith(line), only


def test_a_typo_in_the_file_says_which_file(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("IB_SLACK__SIGNNG_SECRET=x\n")
    with pytest.raises(ConfigError, match=rf"IB_SLACK__SIGNNG_SECRET \(from {re.escape(str(env_file))}\): unknown"):
        load_settings(env_file)


def test_what_is_not_ours_is_left_alone() -> None:
    assert check_keys({"PATH": "/bin", "IB_TEST_POSTGRES": "postgresql://x", "IB_DATADOG__TOKEN": ""}) == []


@pytest.mark.parametrize(("given", "stored"), [
    ("postgres://u:p@db:5432/ib", "postgresql+asyncpg://u:p@db:5432/ib"),
    ("postgresql://u@db/ib", "postgresql+asyncpg://u@db/ib"),
    ("sqlite:////var/lib/ib.db", "sqlite+aiosqlite:////var/lib/ib.db"),
])
def test_database_urls_as_platforms_hand_them_out_are_accepted(given: str, stored: str) -> None:
    assert Settings(database_url=given).database_url == stored


def test_settings_written_as_env_come_back_the_same(tmp_path: Path) -> None:
    original = Settings(
        slack={"bot_token": SecretStr("xoxb-1"), "signing_secret": SecretStr("s"), "default_channel": "C1"},
        pagerduty={"webhook_secrets": [SecretStr("a"), SecretStr("b")]},
        llm={"routes": {"brief": "openai:llama3.1@8b", "ticket": "openai:llama3.1@8b"},
             "prices": {"openai:llama3.1@8b": {"input_per_mtok": 0, "output_per_mtok": 0}},
             "openai": {"base_url": "http://127.0.0.1:11434/v1"}, "fallbacks": []},
        database_url="postgresql+asyncpg://ib@db/ib", catalog_file=Path("/etc/ib/catalog.yaml"))
    env = settings_env(original)
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{key}='{value}'\n" for key, value in env.items()))
    again = load_settings(env_file)
    assert again.model_dump(mode="json") == original.model_dump(mode="json")
    assert again.slack.bot_token.get_secret_value() == "xoxb-1"
    assert "IB_DATADOG__BASE_URL" not in env, "defaults are not repeated"


@pytest.mark.parametrize("section", ["confluence", "jira"])
def test_a_server_personal_access_token_without_a_username_counts_as_configured(section: str) -> None:
    # The connectors send a token without a username as a bearer token (Server/Data Center PATs).
    settings = Settings.model_validate({section: {"base_url": "https://wiki.corp.example", "token": "pat"}})
    assert getattr(settings, section).configured
    unset = Settings.model_validate({section: {"base_url": "https://wiki.corp.example"}})
    assert not getattr(unset, section).configured
