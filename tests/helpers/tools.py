"""What the tool choke point (`bot.gather.tools.ToolRunner`) is handed by its callers, for the
tests that drive it directly: an approval record in a given state (the `ApprovedAction`
protocol; the real ones come from `bot.store.approvals`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FakeApproval:
    id: str
    tool: str
    state: str  # the runner writes only for "executing": claimed for execution of this tool
