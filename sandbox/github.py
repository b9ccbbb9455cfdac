"""Fake GitHub REST v3: deployments, their statuses, compares, commit PRs, pulls and their files.

Rendered from ``world.deploys``. Each repository's history is the chain of its deployed shas
in order of first deploy; a deploy ships one commit whose message is its pull request's title
(squash-merge style, ``Title (#812)``) followed by the deploy description, authored by the
deploy's creator. A pull request carries the world's ``labels`` and ``body`` (the deploy's
description when the PR has none) and lists the deploy's ``files`` as diff entries, paged as
GitHub pages them. Ids and times are derived from the world, so every run answers the same.
Field names follow GitHub's REST API (``X-GitHub-Api-Version: 2022-11-28``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.core import Reply, SandboxContext, SandboxRequest, SystemApp, iso
from sandbox.scenario import Deploy

WEB_BASE = "https://github.com"
DOCS = "https://docs.github.com/rest"
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
COMMIT_LEAD = timedelta(minutes=15)  # a commit lands this long before it is deployed
PR_OPEN_LEAD = timedelta(hours=3)


def _hex(*parts: str) -> str:
    """A stable 40-hex-digit value derived from `parts` (fake object shas, ids)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def _int_id(*parts: str) -> int:
    return int(_hex(*parts)[:8], 16)


def deployment_id(deploy: Deploy) -> int:
    """The deterministic GitHub deployment id of a world deploy."""
    return _int_id("deployment", deploy.repo, deploy.sha, deploy.environment, iso(deploy.created_at))


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_kwDO{number:010d}"


def not_found() -> Reply:
    return Reply({"message": "Not Found", "documentation_url": DOCS, "status": "404"}, status=404)


def _user(login: str | None) -> dict[str, Any]:
    name = login or "github-actions[bot]"
    uid = _int_id("user", name)
    return {
        "login": name, "id": uid, "node_id": _node_id("U", uid % 10**10),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "url": f"https://api.github.com/users/{name}", "html_url": f"{WEB_BASE}/{name}",
        "type": "User" if login else "Bot", "site_admin": False,
    }


@dataclass(frozen=True)
class _Commit:
    sha: str
    deploy: Deploy  # the first deploy that shipped it
    parent: str | None


class _Repo:
    """One repository's view of the world: deploys newest first and the commit chain."""

    def __init__(self, name: str, deploys: list[Deploy]) -> None:
        self.name = name
        self.deploys = sorted(deploys, key=lambda d: (d.created_at, d.sha), reverse=True)
        self.chain: list[_Commit] = []
        for deploy in reversed(self.deploys):
            if not any(c.sha == deploy.sha for c in self.chain):
                parent = self.chain[-1].sha if self.chain else None
                self.chain.append(_Commit(deploy.sha, deploy, parent))

    def commit_index(self, ref: str) -> int | None:
        """A full or abbreviated sha (at least 4 characters), as GitHub resolves them."""
        if len(ref) < 4:
            return None
        hits = [i for i, c in enumerate(self.chain) if c.sha == ref or c.sha.startswith(ref)]
        return hits[0] if len(hits) == 1 else None

    def deploys_with_pr(self, number: int) -> list[Deploy]:
        return [d for d in reversed(self.deploys) if d.pull_request and d.pull_request.number == number]


class GitHubWorld:
    """Renders world deploys as GitHub JSON; `api` is the sandbox's own base URL."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        by_repo: dict[str, list[Deploy]] = {}
        for item in ctx.scenario.catalog:
            if item.github and "repo" in item.github:
                by_repo.setdefault(item.github["repo"], [])
        for deploy in ctx.scenario.world.deploys:
            by_repo.setdefault(deploy.repo, []).append(deploy)
        self.repos = {name: _Repo(name, deploys) for name, deploys in by_repo.items()}

    @property
    def api(self) -> str:
        return self.ctx.urls.get("github", "https://api.github.com")

    def repo(self, req: SandboxRequest) -> _Repo | None:
        return self.repos.get(f"{req.path_params['owner']}/{req.path_params['repo']}")

    def repo_json(self, repo: _Repo) -> dict[str, Any]:
        owner, name = repo.name.split("/", 1)
        rid = _int_id("repo", repo.name)
        return {"id": rid, "node_id": _node_id("R", rid % 10**10), "name": name, "full_name": repo.name,
                "private": True, "owner": _user(owner), "html_url": f"{WEB_BASE}/{repo.name}",
                "url": f"{self.api}/repos/{repo.name}", "default_branch": "main"}

    def deployment(self, repo: _Repo, deploy: Deploy) -> dict[str, Any]:
        did = deployment_id(deploy)
        url = f"{self.api}/repos/{repo.name}/deployments/{did}"
        return {
            "url": url, "id": did, "node_id": _node_id("DE", did), "task": "deploy",
            "original_environment": deploy.environment, "environment": deploy.environment,
            "description": deploy.description, "created_at": iso(deploy.created_at),
            "updated_at": iso(deploy.created_at), "statuses_url": f"{url}/statuses",
            "repository_url": f"{self.api}/repos/{repo.name}", "creator": _user(deploy.creator),
            "sha": deploy.sha, "ref": deploy.ref or deploy.sha, "payload": {},
            "transient_environment": False,
            "production_environment": deploy.environment in {"production", "prod"},
            "performed_via_github_app": None,
        }

    def statuses(self, repo: _Repo, deploy: Deploy) -> list[dict[str, Any]]:
        """Status history, newest first, ending in the world's status."""
        did = deployment_id(deploy)
        history: list[tuple[str, datetime]] = [("queued", deploy.created_at)]
        if deploy.status not in {"pending", "queued"}:
            history.append(("in_progress", deploy.created_at + timedelta(seconds=10)))
        if deploy.status == "inactive":
            history.append(("success", deploy.created_at + timedelta(seconds=90)))
            history.append(("inactive", self._superseded_at(repo, deploy)))
        elif deploy.status not in {"pending", "in_progress"}:
            history.append((deploy.status, deploy.created_at + timedelta(seconds=90)))
        elif deploy.status == "pending":
            history.append(("pending", deploy.created_at + timedelta(seconds=5)))
        dep_url = f"{self.api}/repos/{repo.name}/deployments/{did}"
        out = []
        for n, (state, at) in enumerate(history):
            sid = did * 10 + n
            out.append({
                "url": f"{dep_url}/statuses/{sid}", "id": sid, "node_id": _node_id("DES", sid % 10**10),
                "state": state, "creator": _user(deploy.creator), "description": f"Deployment {state}",
                "environment": deploy.environment, "target_url": "", "log_url": "",
                "created_at": iso(at), "updated_at": iso(at), "deployment_url": dep_url,
                "repository_url": f"{self.api}/repos/{repo.name}", "environment_url": "",
                "performed_via_github_app": None,
            })
        return list(reversed(out))

    @staticmethod
    def _superseded_at(repo: _Repo, deploy: Deploy) -> datetime:
        later = [d.created_at for d in repo.deploys
                 if d.environment == deploy.environment and d.created_at > deploy.created_at]
        return min(later) if later else deploy.created_at + timedelta(hours=1)

    def commit(self, repo: _Repo, commit: _Commit) -> dict[str, Any]:
        deploy = commit.deploy
        at = iso(deploy.created_at - COMMIT_LEAD)
        signature = None
        if deploy.creator:
            signature = {"name": deploy.creator, "email": f"{deploy.creator}@users.noreply.github.com",
                         "date": at}
        web = f"{WEB_BASE}/{repo.name}/commit/{commit.sha}"
        api = f"{self.api}/repos/{repo.name}/commits/{commit.sha}"
        return {
            "sha": commit.sha, "node_id": _node_id("C", _int_id("commit", commit.sha)),
            "commit": {
                "author": signature, "committer": signature, "message": commit_message(deploy),
                "tree": {"sha": _hex("tree", commit.sha),
                         "url": f"{self.api}/repos/{repo.name}/git/trees/{commit.sha}"},
                "url": f"{self.api}/repos/{repo.name}/git/commits/{commit.sha}", "comment_count": 0,
                "verification": {"verified": False, "reason": "unsigned", "signature": None,
                                 "payload": None},
            },
            "url": api, "html_url": web, "comments_url": f"{api}/comments",
            "author": _user(deploy.creator) if deploy.creator else None,
            "committer": _user(deploy.creator) if deploy.creator else None,
            "parents": [{"sha": commit.parent, "url": f"{self.api}/repos/{repo.name}/commits/{commit.parent}",
                         "html_url": f"{WEB_BASE}/{repo.name}/commit/{commit.parent}"}]
            if commit.parent else [],
        }

    def pull(self, repo: _Repo, deploy: Deploy, *, full: bool = False) -> dict[str, Any]:
        """A merged pull request; `full` adds the fields only ``GET /pulls/{n}`` returns."""
        assert deploy.pull_request is not None
        number = deploy.pull_request.number
        pid = _int_id("pull", repo.name, str(number))
        merged = iso(deploy.created_at - COMMIT_LEAD)
        api = f"{self.api}/repos/{repo.name}/pulls/{number}"
        base_sha = repo.chain[max((repo.commit_index(deploy.sha) or 0) - 1, 0)].sha
        out: dict[str, Any] = {
            "url": api, "id": pid, "node_id": _node_id("PR", pid), "number": number,
            "html_url": f"{WEB_BASE}/{repo.name}/pull/{number}",
            "diff_url": f"{WEB_BASE}/{repo.name}/pull/{number}.diff",
            "patch_url": f"{WEB_BASE}/{repo.name}/pull/{number}.patch",
            "issue_url": f"{self.api}/repos/{repo.name}/issues/{number}", "state": "closed",
            "locked": False, "title": deploy.pull_request.title, "user": _user(deploy.creator),
            "body": deploy.pull_request.body or deploy.description,
            "labels": [_label(repo.name, name) for name in deploy.pull_request.labels], "milestone": None,
            "created_at": iso(deploy.created_at - PR_OPEN_LEAD), "updated_at": merged,
            "closed_at": merged, "merged_at": merged, "merge_commit_sha": deploy.sha,
            "assignee": None, "assignees": [], "requested_reviewers": [], "draft": False,
            "head": {"label": f"{repo.name.split('/')[0]}:pr-{number}", "ref": f"pr-{number}",
                     "sha": _hex("head", repo.name, str(number)),
                     "user": _user(deploy.creator), "repo": self.repo_json(repo)},
            "base": {"label": f"{repo.name.split('/')[0]}:main", "ref": "main", "sha": base_sha,
                     "user": _user(repo.name.split("/")[0]), "repo": self.repo_json(repo)},
            "author_association": "MEMBER", "auto_merge": None, "active_lock_reason": None,
        }
        if full:
            out.update({"merged": True, "mergeable": None, "rebaseable": None, "mergeable_state": "unknown",
                        "merged_by": _user(deploy.creator), "comments": 0, "review_comments": 0,
                        "maintainer_can_modify": False, "commits": 1, "additions": 12, "deletions": 4,
                        "changed_files": len(deploy.files)})
        return out

    def files(self, repo: _Repo, deploy: Deploy) -> list[dict[str, Any]]:
        """The deploy's changed paths as ``GET /pulls/{n}/files`` diff entries (no patches:
        nobody here reads them, and GitHub omits them for large diffs too)."""
        out = []
        for path in deploy.files:
            blob = _hex("blob", repo.name, deploy.sha, path)
            quoted = quote(path)
            changes = 1 + int(blob[:2], 16) % 40
            out.append({
                "sha": blob, "filename": path, "status": "modified", "additions": changes - changes // 3,
                "deletions": changes // 3, "changes": changes,
                "blob_url": f"{WEB_BASE}/{repo.name}/blob/{deploy.sha}/{quoted}",
                "raw_url": f"{WEB_BASE}/{repo.name}/raw/{deploy.sha}/{quoted}",
                "contents_url": f"{self.api}/repos/{repo.name}/contents/{quoted}?ref={deploy.sha}",
            })
        return out


def _label(repo: str, name: str) -> dict[str, Any]:
    lid = _int_id("label", repo, name)
    return {"id": lid, "node_id": _node_id("LA", lid % 10**10),
            "url": f"https://api.github.com/repos/{repo}/labels/{quote(name)}", "name": name,
            "description": None, "color": _hex("color", name)[:6], "default": False}


def commit_message(deploy: Deploy) -> str:
    """What the deploy's head commit says: the PR title (squash style), then the description."""
    pr = deploy.pull_request
    if pr is None:
        return deploy.description or f"Release {deploy.ref or deploy.sha}"
    title = f"{pr.title} (#{pr.number})"
    return f"{title}\n\n{deploy.description}" if deploy.description else title


def _page_args(req: SandboxRequest) -> tuple[int, int]:
    def as_int(name: str, default: int) -> int:
        try:
            return int(req.q(name) or default)
        except ValueError:
            return default

    per_page = min(max(as_int("per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
    return per_page, max(as_int("page", 1), 1)


def paginate(req: SandboxRequest, base_url: str, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` and GitHub's ``Link`` header (first/prev/next/last)."""
    per_page, page = _page_args(req)
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(n: int, rel: str) -> str:
        query = {k: v[0] for k, v in req.query.items() if k != "page"}
        query["page"] = str(n)
        return f'<{base_url}{req.path}?{urlencode(query)}>; rel="{rel}"'

    rels = []
    if page > 1:
        rels += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        rels += [link(page + 1, "next"), link(last, "last")]
    return chunk, ({"Link": ", ".join(rels)} if rels else {})


def _auth(ctx: SandboxContext) -> Any:
    def check(req: SandboxRequest) -> Reply | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() in {"bearer", "token"} and token and token == ctx.secrets.get("api_token"):
            return None
        return Reply({"message": "Bad credentials", "documentation_url": DOCS, "status": "401"},
                     status=401)

    return check


def build(ctx: SandboxContext) -> SystemApp:
    app = SystemApp("github", ctx, auth=_auth(ctx))
    world = GitHubWorld(ctx)

    @app.route("GET", "/repos/{owner}/{repo}/deployments", "github.list_deployments")
    async def list_deployments(req: SandboxRequest) -> Reply:
        repo = world.repo(req)
        if repo is None:
            return not_found()
        deploys = [d for d in repo.deploys
                   if (req.q("environment") is None or d.environment == req.q("environment"))
                   and (req.q("sha") is None or d.sha == req.q("sha"))
                   and (req.q("ref") is None or d.ref == req.q("ref"))]
        page, headers = paginate(req, world.api, deploys)
        return Reply([world.deployment(repo, d) for d in page], headers=headers,
                     provenance=[d.id for d in page if d.id])

    @app.route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
               "github.list_deployment_statuses")
    async def list_statuses(req: SandboxRequest) -> Reply:
        repo = world.repo(req)
        wanted = req.path_params["deployment_id"]
        deploy = next((d for d in repo.deploys if str(deployment_id(d)) == wanted), None) if repo else None
        if repo is None or deploy is None:
            return not_found()
        page, headers = paginate(req, world.api, world.statuses(repo, deploy))
        return Reply(page, headers=headers, provenance=[deploy.id] if deploy.id else [])

    @app.route("GET", "/repos/{owner}/{repo}/compare/{basehead}", "github.compare")
    async def compare(req: SandboxRequest) -> Reply:
        repo = world.repo(req)
        base_ref, sep, head_ref = req.path_params["basehead"].partition("...")
        if repo is None or not sep:
            return not_found()
        base_i, head_i = repo.commit_index(base_ref), repo.commit_index(head_ref)
        if base_i is None or head_i is None:
            return not_found()
        shipped = repo.chain[base_i + 1: head_i + 1]
        status = "identical" if base_i == head_i else ("ahead" if head_i > base_i else "behind")
        merge_base = repo.chain[min(base_i, head_i)]
        web = f"{WEB_BASE}/{repo.name}/compare/{base_ref}...{head_ref}"
        body = {
            "url": f"{world.api}{req.path}", "html_url": web, "permalink_url": web,
            "diff_url": f"{web}.diff", "patch_url": f"{web}.patch",
            "base_commit": world.commit(repo, repo.chain[base_i]),
            "merge_base_commit": world.commit(repo, merge_base), "status": status,
            "ahead_by": max(head_i - base_i, 0), "behind_by": max(base_i - head_i, 0),
            "total_commits": len(shipped), "commits": [world.commit(repo, c) for c in shipped],
            "files": [],
        }
        touched = [repo.chain[head_i].deploy, *(c.deploy for c in shipped)]
        return Reply(body, provenance=sorted({d.id for d in touched if d.id}))

    @app.route("GET", "/repos/{owner}/{repo}/commits/{sha}/pulls", "github.list_commit_pulls")
    async def commit_pulls(req: SandboxRequest) -> Reply:
        repo = world.repo(req)
        index = repo.commit_index(req.path_params["sha"]) if repo else None
        if repo is None or index is None:
            return Reply({"message": f"No commit found for SHA: {req.path_params['sha']}",
                          "documentation_url": DOCS, "status": "422"}, status=422)
        deploy = repo.chain[index].deploy
        pulls = [world.pull(repo, deploy)] if deploy.pull_request else []
        page, headers = paginate(req, world.api, pulls)
        return Reply(page, headers=headers, provenance=[deploy.id] if deploy.id and page else [])

    def pull_deploys(req: SandboxRequest) -> tuple[_Repo | None, list[Deploy]]:
        """The repository and the deploys that shipped the pull request the path names."""
        repo = world.repo(req)
        number = req.path_params["number"]
        return repo, (repo.deploys_with_pr(int(number)) if repo and number.isdigit() else [])

    @app.route("GET", "/repos/{owner}/{repo}/pulls/{number}", "github.get_pull")
    async def get_pull(req: SandboxRequest) -> Reply:
        repo, deploys = pull_deploys(req)
        if repo is None or not deploys:
            return not_found()
        return Reply(world.pull(repo, deploys[0], full=True), provenance=[d.id for d in deploys if d.id])

    @app.route("GET", "/repos/{owner}/{repo}/pulls/{number}/files", "github.list_pull_files")
    async def pull_files(req: SandboxRequest) -> Reply:
        repo, deploys = pull_deploys(req)
        if repo is None or not deploys:
            return not_found()
        page, headers = paginate(req, world.api, world.files(repo, deploys[0]))
        return Reply(page, headers=headers, provenance=[d.id for d in deploys if d.id])

    return app
