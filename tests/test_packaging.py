"""The container files say what the Procfile says. No image is built here (CI has no Docker
daemon), so their commands are checked against the Procfile and their settings against the
settings reference: a renamed command or setting cannot leave them behind."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from bot.core.settings_env import check_keys

REPO = Path(__file__).resolve().parents[1]


def procfile() -> dict[str, str]:
    entries = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def _shell_command(argv: list[str]) -> str:
    """What a container runs, as one shell line: ``sh -c "exec X"`` is X."""
    if argv[:2] == ["sh", "-c"]:
        return argv[2].removeprefix("exec ")
    return shlex.join(argv)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def compose() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def test_the_procfile_has_the_two_processes() -> None:
    assert procfile() == {"web": "incident-brief serve --host 0.0.0.0 --port ${PORT:-8000}",
                          "clock": "incident-brief clock"}


def test_the_image_runs_the_procfiles_web_command_as_a_user_not_root() -> None:
    steps = dockerfile_instructions()
    [cmd] = [value for op, value in steps if op == "CMD"]
    assert _shell_command(yaml.safe_load(cmd)) == procfile()["web"]
    users = [value.strip() for op, value in steps if op == "USER"]
    assert users, "the image must not run as root"
    assert users[-1] not in {"root", "0"}


def test_the_image_installs_from_the_lock_file_with_uv() -> None:
    steps = dockerfile_instructions()
    runs = [value for op, value in steps if op == "RUN"]
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs, "dependencies come from uv"
    assert all("--frozen" in run and "--no-dev" in run for run in syncs), "from uv.lock as it is, no dev tools"
    copied = " ".join(value for op, value in steps if op == "COPY")
    assert "uv.lock" in copied
    assert not any("pip install" in run for run in runs)
    bases = [value.split()[0] for op, value in steps if op == "FROM"]
    assert all(base.startswith("python:3.11") for base in bases), "the Python the project declares"


def test_compose_runs_web_and_clock_as_the_procfile_does_on_postgres() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert set(services) == {"web", "clock", "postgres"}
    # `$$` is compose's escape for a literal `$`; the container's shell then expands ${PORT}.
    web = _shell_command(services["web"]["command"]).replace("$$", "$")
    assert web == procfile()["web"]
    assert _shell_command(services["clock"]["command"]) == procfile()["clock"]
    assert services["clock"].get("deploy", {}).get("replicas", 1) == 1, "one clock per deployment"
    for name in ("web", "clock"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["environment"]["IB_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_every_setting_the_container_files_name_is_a_real_setting() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    named = {key: "x" for service in services.values() for key in (service.get("environment") or {})
             if key.startswith("IB_")}
    assert named, "compose sets the store, policy and catalog"
    assert check_keys(named) == []
    dockerfile = (REPO / "Dockerfile").read_text()
    assert check_keys({key: "x" for key in re.findall(r"\bIB_[A-Z_]+", dockerfile)}) == []


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".env", ".sandbox/", "*.db", ".venv/"} <= ignored


def test_the_install_guide_deploys_with_these_files() -> None:
    guide = (REPO / "docs" / "install.md").read_text()
    for needed in ("docker compose up", "compose.yaml", "Dockerfile", *procfile().values()):
        assert needed in guide, needed
