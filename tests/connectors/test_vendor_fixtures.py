"""The vendored answers (tests/fixtures/<vendor>) say where they came from, and cover what issue 12
asks of Atlassian and GitHub (Datadog's, PagerDuty's and Slack's counts are checked beside their
own suites: test_vendor_datadog.py, tests/app/test_e2e_*_vendor.py).

A file is accounted for when its vendor's README names it (its path or file name, in backticks)
or the vendor's sources.json gives the repository, commit and path it was taken from; the README
names the licence either way."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.replay import FIXTURES

VENDORS = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
NOT_DATA = {"README.md", "sources.json"}


def _sources(vendor: Path) -> dict[str, Any]:
    path = vendor / "sources.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _data_files(vendor: Path) -> list[Path]:
    return sorted(p for p in vendor.rglob("*") if p.is_file() and p.name not in NOT_DATA)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda p: p.name)
def test_every_vendored_file_names_its_source(vendor: Path) -> None:
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    sources = _sources(vendor)
    unnamed = [rel for rel in (p.relative_to(vendor).as_posix() for p in _data_files(vendor))
               if f"`{rel}`" not in readme and f"`{Path(rel).name}`" not in readme and rel not in sources]
    assert unnamed == []
    assert [k for k in sources if not (vendor / k).is_file()] == []  # no entry outlives its file
    assert [k for k, s in sources.items()
            if not (s.get("repository") and s.get("path") and re.fullmatch(r"[0-9a-f]{40}", s.get("commit", "")))] == []
    assert re.search(r"licen[cs]e", readme, re.IGNORECASE)


def test_the_atlassian_and_github_answers_cover_what_the_issue_asks() -> None:
    atlassian, github = FIXTURES / "atlassian", FIXTURES / "github"
    assert len(list(atlassian.glob("confluence_*.json"))) >= 5
    assert len(list(atlassian.glob("jira_*.json"))) >= 3
    assert len([p for p in github.glob("*.json") if p.name not in NOT_DATA]) >= 10
