"""GitHub's recorded REST answers (PyGithub's replay data, tests/fixtures/github), replayed over
HTTP to the real connector. The recordings answer requests for other repositories and commits
than ours; each is served for the request of the same kind the connector makes, so what is
checked is how the connector reads GitHub's real shapes, field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.config import GitHubSettings
from bot.core.models import EvidenceKind, TimeWindow, evidence_id
from connectors.github import GitHubConnector
from tests.helpers.replay import Canned, fixture, replaying

ALERT_AT = datetime(2020, 8, 26, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow(alert_at=ALERT_AT, start=ALERT_AT - timedelta(minutes=30), end=ALERT_AT + timedelta(minutes=10),
                    baseline_start=ALERT_AT - timedelta(hours=2))
SHA = "743f5a58b0bce91c4eab744ff7e39dfca9e6e8a5"
REPO = "/repos/acme/shop"


def answers(pulls: object) -> list[Canned]:
    return [
        Canned("GET", f"{REPO}/deployments", fixture("github", "deployments.json")),
        Canned("GET", rf"{REPO}/deployments/\d+/statuses", fixture("github", "deployment_statuses.json")),
        Canned("GET", rf"{REPO}/compare/[0-9a-f]+\.\.\.[0-9a-f]+", fixture("github", "compare_default.json")),
        Canned("GET", rf"{REPO}/commits/[0-9a-f]+/pulls", pulls),
        Canned("GET", rf"{REPO}/pulls/\d+", fixture("github", "pull_3370.json")),
        Canned("GET", rf"{REPO}/pulls/\d+/files", fixture("github", "pull_31_files.json")),
    ]


async def deploys(pulls: object) -> tuple[list, list[str]]:
    async with replaying(answers(pulls)) as server:
        connector = GitHubConnector(GitHubSettings(base_url=server.base_url, web_url="https://github.com", token="t"))
        try:
            found = await connector.recent_deploys("acme/shop", WINDOW)
        finally:
            await connector.aclose()
    return found, server.paths()


async def test_recorded_deployments_whose_ref_is_the_full_sha_get_a_short_title() -> None:
    found, paths = await deploys(fixture("github", "commit_pulls.json"))
    assert [e.title for e in found] == ["Deploy 743f5a5 to test", "Deploy 743f5a5 to production"]
    newest, older = found
    assert newest.id == evidence_id(EvidenceKind.DEPLOY, "acme/shop#263877258")
    assert newest.timestamp == datetime(2020, 8, 26, 11, 44, 53, tzinfo=UTC)
    assert newest.ref == {"sha": SHA, "deployment_id": "263877258"}
    assert newest.data["ref"] == SHA  # the full ref is kept in the data, only the title is short
    assert (newest.data["creator"], newest.data["status"], newest.data["environment"]) == ("jacquev6", "queued", "test")
    assert newest.excerpt.startswith("743f5a5 deployed to test at 11:44 UTC on 2020-08-26 by jacquev6: ")
    pull = newest.data["pull_requests"][0]
    assert (pull["number"], pull["title"], pull["labels"]) == (1431, "Add support for list user projects", [])
    assert pull["body"].startswith("Implements list user project part of https://github.com/PyGithub/")
    # The files of its pull request, in GitHub's order, read from the recorded diff entries.
    assert newest.data["files_total"] == 45
    assert newest.data["files"][:2] == ["codegen/templates/GithubObject.py", "src/github/AuthenticatedUser.py"]
    assert newest.data["files"][-1] == "test/ReplayData/IssueEvent.setUp.txt"
    assert "changed codegen/templates/GithubObject.py, src/github/AuthenticatedUser.py" in newest.excerpt
    assert any(p.endswith("/pulls/1431/files") for p in paths)
    assert newest.data["compare_status"] == "ahead"
    assert newest.data["total_commits"] == 7
    assert [c["sha"][:8] for c in newest.data["commits"]] == [
        "45d18436", "3baa682c", "2f9b1e01", "5c9c2f75", "cbfe8d0f", "e671fdd0", "cef98416"]
    assert newest.data["commits"][-1] == {"sha": "cef98416f45a9cdaf84d7f53cea13ac074a2c05d",
                                          "message": "Use datetime object in create_milestone (#698)",
                                          "author": "btorresgil"}
    assert "Shipped 7 commit(s) since 743f5a5: cef9841 \"Use datetime object in create_milestone (#698)\" by " \
           "btorresgil" in newest.excerpt
    assert "ahhda" in newest.data["authors"]
    assert newest.link == "https://github.com/acme/shop/pull/1431"
    assert older.data["status"] == "queued"
    assert f"{REPO}/deployments" in paths


async def test_a_squash_merge_without_an_indexed_association_is_found_by_its_number() -> None:
    found, paths = await deploys([])  # GitHub has not associated the commits with PRs yet
    newest = found[0]
    assert any(p.endswith("/pulls/698") for p in paths)  # "(#698)" in the head commit's message
    pull = next(p for p in newest.data["pull_requests"] if p["number"] == 3370)
    assert pull["title"] == "Bump actions/setup-python from 5 to 6"
    assert pull["labels"] == ["dependencies", "github_actions"]  # label objects read down to their names
    assert pull["body"].startswith("Bumps [actions/setup-python](https://github.com/actions/setup-python) from 5 to 6.")
    assert len(pull["body"]) <= 500  # a long body is cut, not carried whole
    assert "dependabot[bot]" in newest.data["authors"]
