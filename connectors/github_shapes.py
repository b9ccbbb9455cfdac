"""GitHub's JSON read into what the GitHub connector keeps: deployments, commits, pull requests.

Pure functions over the REST answers (field names as ``X-GitHub-Api-Version: 2022-11-28`` sends
them); anything of the wrong type is left out rather than trusted, so a surprising answer makes
a shorter deploy record, never a crash.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors._time import iso_time

MAX_LABELS = 10
MAX_BODY_CHARS = 500
SHA = re.compile(r"[0-9a-fA-F]{4,40}")

log = logging.getLogger("connectors.github")


@dataclass
class Deployment:
    id: int
    sha: str
    ref: str
    environment: str
    created_at: datetime
    creator: str | None
    description: str | None


@dataclass
class Commit:
    sha: str
    message: str
    author: str | None


@dataclass
class Pull:
    title: str
    author: str | None
    labels: list[str]
    body: str


def labels(value: Any) -> list[str]:
    names = [item.get("name") for item in as_list(value) if isinstance(item, dict)]
    return [n[:50] for n in names if isinstance(n, str) and n][:MAX_LABELS]


def body(value: Any) -> str:
    """The start of a PR body; template comments (``<!-- ... -->``) say nothing about the change."""
    text = re.sub(r"<!--.*?-->", "", value, flags=re.DOTALL).strip() if isinstance(value, str) else ""
    return text[:MAX_BODY_CHARS]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def login(user: Any) -> str | None:
    name = user.get("login") if isinstance(user, dict) else None
    return name if isinstance(name, str) else None


def deployment(item: Any) -> Deployment | None:
    """A deployment from GitHub's JSON, or None when it lacks what we rely on."""
    if not isinstance(item, dict):
        return None
    did, sha, created = item.get("id"), item.get("sha"), iso_time(item.get("created_at"))
    if not isinstance(did, int) or not isinstance(sha, str) or not SHA.fullmatch(sha) or created is None:
        log.info("github: skipping a deployment without a usable id, sha or created_at")
        return None
    ref, env, desc = item.get("ref"), item.get("environment"), item.get("description")
    return Deployment(
        id=did, sha=sha, ref=ref if isinstance(ref, str) and ref else sha[:7],
        environment=env if isinstance(env, str) else "", created_at=created,
        creator=login(item.get("creator")), description=desc if isinstance(desc, str) and desc else None,
    )


def commit(item: Any) -> Commit | None:
    if not isinstance(item, dict):
        return None
    sha, detail = item.get("sha"), item.get("commit")
    if not isinstance(sha, str) or not SHA.fullmatch(sha) or not isinstance(detail, dict):
        return None
    message = detail.get("message")
    author = login(item.get("author"))
    if author is None and isinstance(detail.get("author"), dict):
        name = detail["author"].get("name")
        author = name if isinstance(name, str) else None
    return Commit(sha=sha, message=message if isinstance(message, str) else "", author=author)
