"""Filing (bot.tickets.filing) is the only code that builds the Jira writer, and it creates issues
only inside ToolRunner.write."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python_files() -> list[Path]:
    return [p for folder in ("bot", "connectors", "sandbox", "evals") for p in (REPO / folder).rglob("*.py")]


def test_only_the_ticketing_flow_constructs_the_writer_or_calls_create_issue() -> None:
    offenders: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in {"JiraWriter", "create_issue"} and rel not in {"bot/tickets/filing.py", "connectors/jira.py",
                                                                        "bot/app/doctor.py"}:
                offenders.append(f"{rel}:{node.lineno} calls {name}")
    assert offenders == []


def test_in_ticketing_create_issue_is_only_called_inside_runner_write() -> None:
    tree = ast.parse((REPO / "bot" / "tickets" / "filing.py").read_text())
    inside_write: set[int] = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "write"):
            inside_write.update(id(child) for child in ast.walk(node))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "create_issue"]
    assert calls, "the ticketing flow files tickets through create_issue"
    assert all(id(call) in inside_write for call in calls)
