"""Log template mining: many raw log lines in, a few typed patterns with counts out.

Drain (via ``drain3``) groups messages that differ only in variable parts. Before mining, the
variable parts we can recognise (emails, UUIDs, IPs, hex, numbers) are masked so that
``user 42 failed`` and ``user 7 failed`` land in one pattern even with a single example of
each. The miner is in memory only (no persistence handler, no config file read from the
working directory) and input is sorted first, so the same lines always give the same
patterns whatever order a source returned them in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from bot.core.log_status import ERROR_STATUSES, WARNING_STATUSES
from bot.core.redaction import clip

# Order matters: the wider shapes go first so a UUID is not eaten as hex and numbers.
MASKS: tuple[tuple[str, str], ...] = (
    # Lines arrive masked (see `mine`): a mask is a variable part like any other.
    (r"\[REDACTED:email\]", "EMAIL"),
    (r"\[REDACTED:ipv[46]\]", "IP"),
    (r"\[REDACTED:[a-z0-9_]+\]", "SECRET"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "EMAIL"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b", "HEX"),
    (r"(?<!\w)[-+]?\d+(?:\.\d+)?(?:ms|s|m|h|KB|MB|GB|%)?(?!\w)", "NUM"),
)
# Which member speaks for a pattern: the worst status, from the one table of error and warning
# classes (`fatal` and `emerg` were read as `info` before).
SEVERITY = {**dict.fromkeys(ERROR_STATUSES, 4), "error": 3, **dict.fromkeys(WARNING_STATUSES, 2),
            "notice": 1, "info": 1, "debug": 0}
MAX_PATTERNS = 500  # Drain's cluster bound: memory stays flat on a noisy service
MAX_SAMPLE_CHARS = 400


@dataclass(frozen=True)
class LogLine:
    """One raw log event, as a connector read it."""

    message: str
    status: str
    timestamp: datetime


@dataclass(frozen=True)
class PatternStats:
    """One mined template with its counts on each side of ``split_at`` (the alert window's
    start): ``count`` is at or after it, ``count_before`` before it."""

    template: str
    sample: str  # the most recent raw message of the pattern
    status: str  # the most severe status seen
    count: int
    count_before: int
    first_seen: datetime
    last_seen: datetime

    @property
    def total(self) -> int:
        return self.count + self.count_before

    @property
    def is_new(self) -> bool:
        return self.count_before == 0 and self.count > 0


def new_miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(rx, name) for rx, name in MASKS]
    config.drain_max_clusters = MAX_PATTERNS
    config.drain_sim_th = 0.4
    config.drain_depth = 4
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    return TemplateMiner(persistence_handler=None, config=config)


def mine(lines: Iterable[LogLine], *, split_at: datetime) -> list[PatternStats]:
    """Group lines into templates; most frequent in the alert window first."""
    ordered = sorted(lines, key=lambda line: (line.timestamp, line.message, line.status))
    if not ordered:
        return []
    miner = new_miner()
    # Lines are masked before they are mined: a template keeps the words drain3 does not
    # recognise as variables, and a secret's letters would survive in it ("xapp-<NUM>-A07Q…").
    # Masked once per distinct message: a burst repeats the same few lines thousands of times.
    masked: dict[str, str] = {}
    cluster_of = [miner.add_log_message(masked.setdefault(line.message, _one_line(line.message)))["cluster_id"]
                  for line in ordered]
    groups: dict[int, list[LogLine]] = {}
    for cid, line in zip(cluster_of, ordered, strict=True):
        groups.setdefault(cid, []).append(line)
    # Templates settle only once every line is seen: read them at the end, not per line.
    templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
    stats = [_stats(templates.get(cid, members[-1].message), members, split_at)
             for cid, members in groups.items()]
    return sorted(stats, key=lambda s: (-s.count, -s.count_before, s.template))


def _stats(template: str, members: list[LogLine], split_at: datetime) -> PatternStats:
    before = sum(1 for line in members if line.timestamp < split_at)
    worst = max(members, key=lambda line: (SEVERITY.get(line.status.lower(), 1), line.timestamp))
    return PatternStats(
        template=template,
        sample=clip(members[-1].message, MAX_SAMPLE_CHARS, one_line=False),  # the raw lines kept
        status=worst.status.lower(),
        count=len(members) - before,
        count_before=before,
        first_seen=members[0].timestamp,
        last_seen=members[-1].timestamp,
    )


def _one_line(message: str) -> str:
    # Stack traces arrive as one message; the first line names the failure, the rest is noise
    # that would split one failure into many patterns.
    first = message.strip().splitlines()[0] if message.strip() else ""
    return clip(first, 1000, one_line=False)  # masked, then cut
