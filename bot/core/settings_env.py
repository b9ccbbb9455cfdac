"""The settings as a person writes them: ``IB_`` environment variables and a ``.env`` file.

One walk over the settings model (`bot.core.config.Settings`) gives every setting's variable
name, kind, default and description. From it come the settings reference
(``docs/settings.md``), ``.env.example``, the sandbox's env file, and the checks that turn a
wrong setting into one line naming it: an unknown ``IB_`` key (a typo would otherwise be
ignored), a list or mapping that is not JSON, a value of the wrong type.
"""

from __future__ import annotations

import difflib
import json
import os
import textwrap
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsError

from bot.core.config import DEFAULT_ROUTES, MODEL_TASKS, ModelPrice, Settings
from bot.core.errors import ConfigError

PREFIX = "IB_"
# Read by the test suite, not by the bot: not a setting, yet not a typo either.
NOT_SETTINGS = frozenset({"IB_TEST_POSTGRES"})
GROUPS = {"": "General", "database": "General", "slack": "Slack", "pagerduty": "PagerDuty",
          "datadog": "Datadog", "github": "GitHub", "confluence": "Confluence", "jira": "Jira",
          "llm": "Model (the LLM gateway)", "telemetry": "Telemetry (events, digest, metrics)"}
Kind = Literal["text", "secret", "number", "integer", "true/false", "path", "JSON list", "JSON object", "choice"]


@dataclass(frozen=True)
class SettingSpec:
    path: tuple[str, ...]  # ("slack", "bot_token"); a route is ("llm", "routes", "brief")
    kind: Kind
    default: str  # as it would be written in a .env file; "" for none
    description: str
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return PREFIX + "__".join(part.upper() for part in self.path)

    @property
    def group(self) -> str:
        return GROUPS.get(self.path[0], GROUPS[""]) if len(self.path) > 1 else GROUPS[""]

    @property
    def secret(self) -> bool:
        return self.kind == "secret" or (self.kind == "JSON list" and self.path[-1].endswith("secrets"))


def _unwrap(annotation: Any) -> Any:
    """``X | None`` is X."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _kind(annotation: Any) -> tuple[Kind, tuple[str, ...]]:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice", tuple(str(arg) for arg in get_args(annotation))
    if origin is list:
        return "JSON list", ()
    if origin is dict:
        return "JSON object", ()
    kinds: dict[Any, Kind] = {SecretStr: "secret", bool: "true/false", int: "integer", float: "number",
                              Path: "path"}
    return kinds.get(annotation, "text"), ()


def env_text(value: Any) -> str:
    """A value as a .env file or an environment variable holds it (secrets revealed)."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(_plain(value))
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _walk(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterator[SettingSpec]:
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = _unwrap(field.annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, path)
            continue
        if path == ("llm", "routes"):  # one variable per task: the route a team changes first
            for task in MODEL_TASKS:
                yield SettingSpec((*path, task), "text", DEFAULT_ROUTES[task],
                                  f"the pinned model (provider:model@version) for the {task} task")
            continue
        kind, choices = _kind(field.annotation)
        yield SettingSpec(path, kind, _default_text(field, kind), _description(field, path), choices)


def _default_text(field: FieldInfo, kind: Kind) -> str:
    default = field.get_default(call_default_factory=True)
    if kind == "secret" or default in (None, [], {}):
        return ""
    if kind == "JSON object" and isinstance(default, dict) and default and isinstance(
            next(iter(default.values())), ModelPrice):
        return "(built-in price table)"
    return env_text(default)


def _description(field: FieldInfo, path: tuple[str, ...]) -> str:
    if field.description:
        return field.description
    raise ValueError(f"setting {'.'.join(path)} has no description: every setting is documented")


def setting_specs() -> list[SettingSpec]:
    """Every setting, in the order of the settings model."""
    return list(_walk(Settings, ()))


def value_of(settings: Settings, spec: SettingSpec) -> Any:
    value: Any = settings
    for part in spec.path:
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def settings_env(settings: Settings) -> dict[str, str]:
    """The variables that reproduce `settings` (those that differ from the defaults), secrets
    revealed: what the sandbox writes for a `serve` in another terminal to read."""
    defaults = Settings.model_construct()
    out: dict[str, str] = {}
    for spec in setting_specs():
        text = env_text(value_of(settings, spec))
        if spec.path[:2] == ("llm", "routes"):
            default = DEFAULT_ROUTES[spec.path[2]]
        else:
            default = env_text(value_of(defaults, spec)) if spec.kind != "secret" else ""
        if text != default:
            out[spec.env] = text
    return out


# --- checking what a person wrote ----------------------------------------------------------

def _known() -> dict[str, SettingSpec]:
    known = {spec.env: spec for spec in setting_specs()}
    routes = SettingSpec(("llm", "routes"), "JSON object", "", "every task's model as one JSON object")
    known[routes.env] = routes
    return known


def check_keys(values: Mapping[str, str], origin: Mapping[str, str] | None = None) -> list[str]:
    """One line per ``IB_`` variable that names no setting, or whose list or mapping is not
    JSON of that shape. `origin` says where each came from (``.env`` or the environment)."""
    known = _known()
    problems: list[str] = []
    for raw_key, value in sorted(values.items()):
        key = raw_key.upper()
        if not key.startswith(PREFIX) or key in NOT_SETTINGS or value in (None, ""):
            continue
        where = f" (from {origin[raw_key]})" if origin and raw_key in origin else ""
        spec = known.get(key) or _nested_in_object(key, known)
        if spec is None:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else "; see docs/settings.md"
            problems.append(f"{key}{where}: unknown setting{hint}")
            continue
        if spec.kind in ("JSON list", "JSON object"):
            problem = _json_problem(spec, value)
            if problem:
                problems.append(f"{key}{where}: {problem}")
    return problems


def _nested_in_object(key: str, known: dict[str, SettingSpec]) -> SettingSpec | None:
    """``IB_LLM__CANARY__ROUTES__BRIEF__MODEL`` sets a key inside a JSON-object setting (its keys
    are the user's to name; pydantic-settings builds the object): allowed, not checked as JSON."""
    parts = key.split("__")
    for cut in range(len(parts) - 1, 0, -1):
        spec = known.get("__".join(parts[:cut]))
        if spec is not None:  # routes have a variable per task: another task is a typo
            nested = spec.kind == "JSON object" and spec.path != ("llm", "routes")
            return SettingSpec(spec.path, "text", "", spec.description) if nested else None
    return None


def _json_problem(spec: SettingSpec, value: str) -> str | None:
    example = '["first", "second"]' if spec.kind == "JSON list" else '{"name": "value"}'
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return f"expected a {spec.kind}, e.g. {example} (got text that is not JSON)"
    if spec.kind == "JSON list" and not (isinstance(parsed, list) and all(isinstance(i, str) for i in parsed)):
        return f"expected a JSON list of strings, e.g. {example}"
    if spec.kind == "JSON object" and not isinstance(parsed, dict):
        return f"expected a JSON object, e.g. {example}"
    return None


def env_name(location: tuple[int | str, ...]) -> str:
    """The variable a validation error's location points at (list indexes dropped)."""
    parts = [str(part).upper() for part in location if isinstance(part, str)]
    return PREFIX + "__".join(parts) if parts else "settings"


def validation_lines(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{env_name(tuple(error['loc']))}: {message}")
    return lines


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """The settings from the environment and `env_file` (when it exists; the environment wins).
    Every problem is a `ConfigError` line naming the variable."""
    environ = os.environ
    present = env_file is not None and env_file.is_file()
    from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if present and env_file else {}
    origin = {**dict.fromkeys(from_file, str(env_file)), **dict.fromkeys(environ, "the environment")}
    problems = check_keys({**from_file, **environ}, origin)
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return Settings(_env_file=env_file if present else None)
    except ValidationError as exc:
        raise ConfigError("\n".join(validation_lines(exc))) from exc
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        raise ConfigError(f"settings: {exc}") from exc


# --- documents generated from the model ----------------------------------------------------

def _grouped() -> dict[str, list[SettingSpec]]:
    groups: dict[str, list[SettingSpec]] = {}
    for spec in setting_specs():
        groups.setdefault(spec.group, []).append(spec)
    return groups


def reference_markdown() -> str:
    """``docs/settings.md``: every setting, generated (``incident-brief config --reference``)."""
    lines = [
        "# Settings reference",
        "",
        "<!-- Generated from bot/core/config.py by `incident-brief config --reference`; "
        "tests/core/test_settings_env.py keeps it in step. Edit the descriptions there. -->",
        "",
        "Every setting is an environment variable with the prefix `IB_` (`__` between a section and "
        "its key). `incident-brief` also reads a `.env` file in the working directory (or the file "
        "given with `--env-file`); the environment wins over the file, and a blank value means "
        "\"not set\". An unknown `IB_` variable, a list that is not JSON or a value of the wrong "
        "type stops the command with one line naming the variable (exit code 2). "
        "`incident-brief config` prints the effective settings, secrets masked, and what each "
        "feature still lacks. `.env.example` lists the same settings.",
        "",
    ]
    for group, specs in _grouped().items():
        lines += [f"## {group}", "", "| variable | kind | default | what it is |", "| --- | --- | --- | --- |"]
        for spec in specs:
            kind = " \\| ".join(spec.choices) if spec.choices else spec.kind
            default = f"`{spec.default}`" if spec.default and not spec.default.startswith("(") else spec.default
            description = spec.description.replace("|", "\\|")
            lines.append(f"| `{spec.env}` | {kind} | {default} | {description} |")
        lines.append("")
    return "\n".join(lines)


def env_example() -> str:
    """``.env.example``: every setting with its description; the ones with a default are
    commented out (uncomment to change), the ones without are left blank to fill in."""
    lines = [
        "# incident-brief settings: copy to .env and fill in. Generated from bot/core/config.py",
        "# (`incident-brief config --env-example`); the reference is docs/settings.md.",
        "# Blank means not set; a commented line shows the default.",
    ]
    for group, specs in _grouped().items():
        lines += ["", f"# ---- {group} " + "-" * max(4, 70 - len(group))]
        for spec in specs:
            lines += [f"# {line}" for line in textwrap.wrap(spec.description, width=96)]
            lines.append(f"# {spec.env}={spec.default}" if spec.default and not spec.default.startswith("(")
                         else f"{spec.env}=")
    return "\n".join(lines) + "\n"
