"""GitHub, both sides of the wire: the sandbox's REST v3 fake and the read-only connector.

Every test drives the real httpx client against `Sandbox(scenario, systems=["github"])`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import connectors.github as gh
from bot.core.config import GitHubSettings
from bot.core.errors import SourceUnavailable, WireRefused
from bot.core.models import EvidenceKind, TimeWindow
from connectors.github import GitHubConnector, build_client
from sandbox.github import deployment_id
from sandbox.scenario import Scenario, bundled_scenarios_dir, load_scenario, parse_scenario
from sandbox.server import Sandbox

TOKEN = "sandbox-api-token"
REPO = "acme/shop"
ALERT_AT = datetime(2026, 5, 12, 14, 1, tzinfo=UTC)


def checkout() -> Scenario:
    """The shared checkout example, its bad deploy's pull request with labels, a body and files."""
    raw = load_scenario(bundled_scenarios_dir() / "checkout-5xx-after-deploy.yaml").model_dump(
        mode="json", by_alias=True, exclude_none=True)
    bad = raw["world"]["deploys"][0]
    bad["pull_request"].update(labels=["dependencies", "pricing"],
                               body="pricing-lib 4.2 changes how PriceCalculator applies stacked discounts.")
    bad["files"] = ["build.gradle", "gradle.lockfile", "src/main/java/com/acme/checkout/PricingConfig.java"]
    return parse_scenario(raw, "checkout variant")


def window(alert_at: datetime = ALERT_AT) -> TimeWindow:
    start = alert_at - timedelta(hours=1)
    return TimeWindow(alert_at=alert_at, start=start, end=alert_at + timedelta(minutes=4),
                      baseline_start=start - timedelta(hours=3))


def scenario(deploys: list[dict[str, Any]], errors: dict[str, str] | None = None) -> Scenario:
    """A small world around `REPO`; `deploys` are scenario deploy entries."""
    return parse_scenario({
        "version": 1, "id": "gh-test", "title": "github test", "now": "2026-05-12T14:05:00Z",
        "alert": {"via": "cli", "title": "shop errors", "service": "shop",
                  "triggered_at": "2026-05-12T14:01:00Z"},
        "catalog": [{"name": "shop", "github": {"repo": REPO}}],
        "world": {"deploys": deploys, "faults": {"errors": errors or {}}},
        "expect": {"cause": {"kind": "unknown"}},
    })


def hourly_deploys(count: int, last: datetime = ALERT_AT - timedelta(minutes=30)) -> list[dict[str, Any]]:
    """`count` production deploys an hour apart, newest at `last`, each with its own PR."""
    out = []
    for n in range(count):
        at = last - timedelta(hours=count - 1 - n)
        out.append({"id": f"d{n}", "repo": REPO, "sha": f"{n:03d}abc{n:03d}", "ref": f"v1.{n}.0",
                    "environment": "production", "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "creator": f"dev-{n}", "description": f"Change number {n}",
                    "pull_request": {"number": 100 + n, "title": f"PR {n}"}})
    return out


def settings(sb: Sandbox, **overrides: Any) -> GitHubSettings:
    values: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, **overrides}
    return GitHubSettings.model_validate({**sb.settings().github.model_dump(), **values})


async def deploys_for(sb: Sandbox, repo: str, win: TimeWindow, **overrides: Any) -> list[Any]:
    connector = GitHubConnector(settings(sb, **overrides))
    try:
        return await connector.recent_deploys(repo, win)
    finally:
        await connector.aclose()


# --- the incident this project exists for -------------------------------------------------


@pytest.mark.asyncio
async def test_checkout_bad_deploy_carries_its_pr_and_what_it_shipped() -> None:
    scen = checkout()
    with Sandbox(scen, systems=["github"]) as sb:
        evidence = await deploys_for(sb, "acme/checkout-api", window())
        recorded = sb.recorder.requests("github")
        writes = sb.recorder.writes()

    assert [e.ref["sha"] for e in evidence] == ["9f1c2ab", "77aa010"]  # newest first, previous included
    bad = evidence[0]
    assert bad.kind is EvidenceKind.DEPLOY
    assert bad.ref == {"sha": "9f1c2ab", "deployment_id": str(deployment_id(scen.world.deploys[0]))}
    assert bad.data["pull_requests"] == [{
        "number": 812, "title": "Bump pricing-lib to 4.2", "labels": ["dependencies", "pricing"],
        "body": "pricing-lib 4.2 changes how PriceCalculator applies stacked discounts."}]
    assert bad.data["files"] == ["build.gradle", "gradle.lockfile",
                                 "src/main/java/com/acme/checkout/PricingConfig.java"]
    assert bad.data["files_total"] == 3
    assert "changed build.gradle, gradle.lockfile" in bad.excerpt
    assert bad.data["status"] == "success"
    assert bad.data["creator"] == "dev-ana"
    assert bad.data["previous_sha"] == "77aa010"
    assert [c["sha"] for c in bad.data["commits"]] == ["9f1c2ab"]
    assert bad.data["authors"] == ["dev-ana"]
    assert bad.data["missing"] == []
    assert "pricing-lib" in bad.excerpt
    assert "PR #812" in bad.excerpt
    assert bad.excerpt.startswith(
        "v2.3.1 (9f1c2ab) deployed to production at 13:57 UTC on 2026-05-12 by dev-ana")
    assert bad.link == "https://github.com/acme/checkout-api/pull/812"
    assert bad.timestamp == datetime(2026, 5, 12, 13, 57, tzinfo=UTC)
    assert bad.provenance.tool == "github.list_deployments"
    assert bad.provenance.request.startswith(
        "GET /repos/acme/checkout-api/deployments?environment=production")

    previous = evidence[1]
    assert previous.data["pull_requests"] == [{"number": 805, "title": "Gift card validation", "labels": [],
                                               "body": "Add gift-card validation"}]
    assert previous.data["files"] == []
    assert previous.data["previous_sha"] is None  # nothing older to compare against
    assert "No later deploy" not in previous.excerpt
    assert "No later deploy" in bad.excerpt

    tools = {r.tool for r in recorded}
    assert tools == {"github.list_deployments", "github.list_deployment_statuses", "github.compare",
                     "github.list_commit_pulls", "github.list_pull_files"}
    assert all(r.method == "GET" and r.status == 200 for r in recorded)
    assert {p for r in recorded for p in r.provenance} == {"bad-deploy", "old-deploy"}
    assert writes == []
    auth = next(r for r in recorded).headers
    assert auth["accept"] == "application/vnd.github+json"
    assert auth["x-github-api-version"] == "2022-11-28"


@pytest.mark.asyncio
async def test_evidence_ids_and_deployment_ids_are_stable_across_runs() -> None:
    runs = []
    for _ in range(2):
        with Sandbox(checkout(), systems=["github"]) as sb:
            runs.append([(e.id, e.ref["deployment_id"]) for e in await deploys_for(sb, "acme/checkout-api",
                                                                                  window())])
    assert runs[0] == runs[1]


@pytest.mark.asyncio
async def test_no_deploy_in_window_still_reports_the_last_one_before_it() -> None:
    scen = load_scenario(bundled_scenarios_dir() / "search-latency-injection.yaml")
    alert_at = scen.alert.triggered_at
    with Sandbox(scen, systems=["github"]) as sb:
        evidence = await deploys_for(sb, "acme/search-api", window(alert_at))
    assert [e.ref["sha"] for e in evidence] == ["1b2c3d4"]
    assert evidence[0].data["latest"] is True
    assert "No later deploy to production up to 2026-06-03" in evidence[0].excerpt


@pytest.mark.asyncio
async def test_redeploy_and_rollback_are_told_apart() -> None:
    at = ALERT_AT - timedelta(hours=3)
    deploys = [
        {"id": "a", "repo": REPO, "sha": "aaaa111", "ref": "v1", "environment": "production",
         "created_at": f"{at:%Y-%m-%dT%H:%M:%SZ}"},
        {"id": "b", "repo": REPO, "sha": "bbbb222", "ref": "v2", "environment": "production",
         "created_at": f"{at + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"},
        {"id": "rollback", "repo": REPO, "sha": "aaaa111", "ref": "v1", "environment": "production",
         "created_at": f"{at + timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}", "status": "in_progress"},
    ]
    with Sandbox(scenario(deploys), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window())
    newest = evidence[0]
    assert newest.data["compare_status"] == "behind"
    assert "rollback" in newest.excerpt
    assert newest.data["status"] == "in_progress"
    assert evidence[1].data["compare_status"] == "ahead"


# --- pagination ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_follows_link_next_across_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gh, "PER_PAGE", 3)
    with Sandbox(scenario(hourly_deploys(8)), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window())
        listing = sb.recorder.requests("github", tool="github.list_deployments")
    assert [r.query.get("page", ["1"])[0] for r in listing] == ["1", "2", "3"]
    assert len(evidence) == 8
    assert [e.data["pull_requests"][0]["number"] for e in evidence] == list(range(107, 99, -1))
    # The oldest deploy of the listing is compared with nothing; every other with the one before.
    assert [e.data["previous_sha"] for e in evidence[:-1]] == [e.ref["sha"] for e in evidence[1:]]


@pytest.mark.asyncio
async def test_pagination_is_bounded_by_max_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gh, "PER_PAGE", 3)
    with Sandbox(scenario(hourly_deploys(12)), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window(), max_pages=2)
        listing = sb.recorder.requests("github", tool="github.list_deployments")
    assert len(listing) == 2
    assert len(evidence) == 6


@pytest.mark.asyncio
async def test_listing_stops_at_the_first_deploy_older_than_the_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gh, "PER_PAGE", 2)
    # 40 hourly deploys: the window (a day before the 3 h baseline) holds 28 of them.
    with Sandbox(scenario(hourly_deploys(40)), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window(), max_pages=50)
        listing = sb.recorder.requests("github", tool="github.list_deployments")
    since = window().baseline_start - timedelta(hours=24)
    in_window = [e for e in evidence if e.timestamp and e.timestamp >= since]
    assert len(in_window) == 28
    assert len(evidence) == 29  # plus the last deploy before the window
    assert len(listing) == 15  # 29 deploys seen at 2 per page; not all 20 pages


@pytest.mark.asyncio
async def test_a_next_link_to_another_host_is_not_followed() -> None:
    seen: list[str] = []

    def github_elsewhere(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=[], headers={
            "Link": '<https://evil.example/repos/acme/shop/deployments?page=2>; rel="next"'})

    connector = GitHubConnector(GitHubSettings(base_url="https://api.github.com", token=TOKEN),
                                transport=httpx.MockTransport(github_elsewhere))
    with pytest.raises(SourceUnavailable, match="another host"):
        await connector.recent_deploys(REPO, window())
    await connector.aclose()
    assert len(seen) == 1


# --- the sandbox speaks GitHub ------------------------------------------------------------


def test_sandbox_wire_format_and_auth() -> None:
    scen = checkout()
    with Sandbox(scen, systems=["github"]) as sb:
        client = httpx.Client(base_url=sb.url("github"), headers={"Authorization": f"Bearer {TOKEN}"})
        page = client.get("/repos/acme/checkout-api/deployments", params={"per_page": 1})
        assert page.status_code == 200
        [dep] = page.json()
        assert {"id", "sha", "ref", "environment", "creator", "created_at", "description", "statuses_url",
                "node_id", "task", "payload", "production_environment"} <= set(dep)
        assert dep["sha"] == "9f1c2ab"
        assert dep["creator"]["login"] == "dev-ana"
        assert page.links["next"]["url"].endswith("per_page=1&page=2")
        assert page.links["last"]["url"].endswith("page=2")
        second = client.get(page.links["next"]["url"])
        assert [d["sha"] for d in second.json()] == ["77aa010"]
        assert "next" not in second.links
        assert "prev" in second.links

        statuses = client.get(f"/repos/acme/checkout-api/deployments/{dep['id']}/statuses").json()
        assert [s["state"] for s in statuses] == ["success", "in_progress", "queued"]

        compare = client.get("/repos/acme/checkout-api/compare/77aa010...9f1c2ab").json()
        assert (compare["status"], compare["ahead_by"], compare["total_commits"]) == ("ahead", 1, 1)
        commit = compare["commits"][0]
        assert commit["commit"]["message"] == "Bump pricing-lib to 4.2 (#812)\n\nBump pricing-lib 4.1 -> 4.2"
        assert commit["author"]["login"] == "dev-ana"
        assert commit["parents"][0]["sha"] == "77aa010"
        assert client.get("/repos/acme/checkout-api/compare/9f1c2ab...77aa010").json()["status"] == "behind"

        pulls = client.get("/repos/acme/checkout-api/commits/9f1c2ab/pulls").json()
        assert [(p["number"], p["merge_commit_sha"], p["state"]) for p in pulls] == [
            (812, "9f1c2ab", "closed")]
        pull = client.get("/repos/acme/checkout-api/pulls/812").json()
        assert pull["merged"] is True
        assert pull["user"]["login"] == "dev-ana"

        assert client.get("/repos/acme/nope/deployments").status_code == 404
        assert client.get("/repos/acme/checkout-api/pulls/999").status_code == 404
        assert client.get("/repos/acme/checkout-api/compare/77aa010..9f1c2ab").status_code == 404
        assert client.get("/repos/acme/checkout-api/commits/deadbee/pulls").status_code == 422
        assert client.get("/repos/acme/checkout-api/deployments/1/statuses").status_code == 404

        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            denied = httpx.get(f"{sb.url('github')}/repos/acme/checkout-api/deployments", headers=headers)
            assert denied.status_code == 401
            assert denied.json()["message"] == "Bad credentials"


@pytest.mark.asyncio
async def test_wrong_token_is_a_clear_gap() -> None:
    with Sandbox(checkout(), systems=["github"]) as sb, pytest.raises(SourceUnavailable) as err:
        await deploys_for(sb, "acme/checkout-api", window(), token="not-the-token")
    assert err.value.source == "github"
    assert err.value.reason == "HTTP 401"


# --- faults (every fault on every connector: test_faults.py) ------------------------------


@pytest.mark.asyncio
async def test_a_failing_detail_read_keeps_the_deploy_and_says_what_is_missing() -> None:
    with Sandbox(scenario(hourly_deploys(3), {"github.compare": "http_500"}), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window(), max_retries=0)
    assert len(evidence) == 3
    newest = evidence[0]
    assert "commits" in newest.data["missing"]
    assert "Not available from GitHub: commits" in newest.excerpt
    # The head commit's PR is still looked up when the compare fails.
    assert [(p["number"], p["title"]) for p in newest.data["pull_requests"]] == [(102, "PR 2")]


@pytest.mark.asyncio
async def test_a_timing_out_detail_read_does_not_stall_every_deploy() -> None:
    with Sandbox(scenario(hourly_deploys(6), {"github.list_deployment_statuses": "timeout"}),
                 systems=["github"]) as sb:
        started = time.monotonic()
        evidence = await deploys_for(sb, REPO, window(), timeout_s=0.3, max_retries=0)
        elapsed = time.monotonic() - started
        status_reads = sb.recorder.requests("github", tool="github.list_deployment_statuses")
    assert len(evidence) == 6
    assert all(e.data["status"] is None and "status" in e.data["missing"] for e in evidence)
    assert elapsed < 2.0
    assert 1 <= len(status_reads) <= gh.CONCURRENCY  # after the first timeout the rest are skipped


@pytest.mark.asyncio
async def test_invalid_repo_name_is_refused_before_any_request() -> None:
    with Sandbox(checkout(), systems=["github"]) as sb:
        for bad in ("acme", "acme/checkout-api/../x", "acme/checkout api", "acme/x?y=1"):
            with pytest.raises(SourceUnavailable, match="invalid repository name"):
                await deploys_for(sb, bad, window())
        assert sb.recorder.requests() == []


# --- read-only at the wire (every connector: test_wire_allowlists.py) ----------------------


@pytest.mark.asyncio
async def test_allowlist_respects_an_enterprise_base_path() -> None:
    with Sandbox(checkout(), systems=["github"]) as sb:
        ghes = settings(sb, base_url=sb.url("github") + "/api/v3")
        client = build_client(ghes)
        with pytest.raises(WireRefused):
            await client.post("/repos/acme/checkout-api/deployments")
        response = await client.get("/repos/acme/checkout-api/deployments")
        await client.aclose()
    # The sandbox serves GitHub.com paths, so a GHES-style prefix reaches it and gets a 404.
    assert response.status_code == 404
    assert response.request.url.path == "/api/v3/repos/acme/checkout-api/deployments"




@pytest.mark.asyncio
async def test_changed_files_are_paged_and_bounded() -> None:
    deploys = hourly_deploys(1)
    deploys[0]["files"] = [f"src/module_{i:03d}.py" for i in range(250)]
    deploys[0]["pull_request"]["labels"] = ["refactor"]
    with Sandbox(scenario(deploys), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window())
        paths = [r.path for r in sb.recorder.requests("github") if r.tool == "github.list_pull_files"]
    (only,) = evidence
    # Two pages of 100 are read (MAX_FILE_PAGES), the rest is counted as unread, never fetched.
    assert len(paths) == 2
    assert only.data["files"] == [f"src/module_{i:03d}.py" for i in range(100)]
    assert only.data["files_total"] == 200
    assert only.data["pull_requests"][0]["labels"] == ["refactor"]
    assert "and 195 more file(s)" in only.excerpt


@pytest.mark.asyncio
async def test_a_failing_files_read_keeps_the_deploy_and_says_so() -> None:
    with Sandbox(scenario(hourly_deploys(2), {"github.list_pull_files": "http_500"}), systems=["github"]) as sb:
        evidence = await deploys_for(sb, REPO, window(), max_retries=0)
    assert len(evidence) == 2
    assert all("changed files" in e.data["missing"] for e in evidence)
    assert evidence[0].data["pull_requests"][0]["title"] == "PR 1"
