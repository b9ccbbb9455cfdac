"""Every tuned number of the analysis, named, with why it is what it is.

A hypothesis's score is a sum of evidence weights, each capped at 1.0 overall; `confidence`
turns the score into the words a reader sees. The weights were set on the bundled scenarios
so that one strong signal alone reaches "medium" and "high" needs two independent ones
agreeing (timing plus a symptom that follows, or a dependency's logs plus its metrics).
Change them here, never inline, and run the eval suite (development and held-out sets).
"""

from __future__ import annotations

from dataclasses import dataclass

# --- what counts as a signal at all ----------------------------------------------------------

MIN_PATTERN_COUNT = 3  # a log pattern with fewer events in the window is noise, not a signal
SPIKE_RATIO = 3.0  # a pattern whose rate is 3x its baseline rate is spiking (1-2x is daily variation)
SATURATION_PCT = 90.0  # a percent metric at or above this is saturated (headroom gone, queues build)
TRAFFIC_SURGE_RATIO = 1.8  # request rate at less than 1.8x its level is ordinary variation
TRAFFIC_BIG_SURGE_RATIO = 3.0  # 3x and more is a surge by itself, whatever else is going on
BUSY_PATTERN_EVENTS = 20  # a dependency error pattern this busy is not a one-off blip

# --- from score to confidence ----------------------------------------------------------------

HIGH = 0.8  # two independent signals agree (e.g. timing and a following symptom)
CONFIDENT = 0.5  # the top hypothesis needs medium confidence, else the brief says "unknown"
LISTED = 0.3  # weaker leads are still listed (as low confidence), never promoted to the answer

# --- timing: how strongly a change's landing time suggests it caused the onset ---------------

# A change this many minutes or more after the onset came too late to cause it. One minute of
# slack: metric points are a minute apart, so a step dated 13:58 may have begun at 13:57:30.
AFTER_ONSET_SLACK_MIN = 1.0
# (minutes before the onset at most, score): a change in the half hour before is the usual
# suspect; hours before it is a lead; more than a day before, no longer one.
PROXIMITY: tuple[tuple[float, float], ...] = (
    (30, 1.0),
    (120, 0.5),
    (360, 0.25),
    (24 * 60, 0.1),
)


@dataclass(frozen=True)
class ChangeWeights:
    """A deploy or config change as the cause."""

    # Timing is most of the case for a change (the first question an on-call engineer asks
    # is "what changed?"), but alone it stays below "high": a change right before can be
    # a coincidence.
    timing: float = 0.65
    # New error patterns starting within 30 minutes after the change: the change's fingerprint.
    errors_follow: float = 0.2
    # The service's own metrics stepping within 30 minutes after it: the symptom follows.
    metric_follows: float = 0.15
    # Nothing moved at all (no metric step, no notable error): a change is a lead, not a cause.
    no_symptom_factor: float = 0.5
    # A deployment that failed usually left the old version serving: less likely the cause.
    failed_factor: float = 0.6
    # What it changed names what is failing (a file, an identifier, the dependency): content
    # agreeing with timing is what "high" needs.
    content_matches: float = 0.15
    # Timing alone (nothing it changed names the symptom) stays below "high" (calibration).
    timing_only_cap: float = 0.75
    # It changed only docs, tests or copy: it cannot break a running service; listed low at most.
    inert_factor: float = 0.3
    errors_follow_within_min: float = 30
    metric_follows_within_min: float = 30


@dataclass(frozen=True)
class DependencyWeights:
    """A dependency (database, cache, queue, upstream API) as the cause."""

    # Error logs naming the dependency: the strongest single hint, worth "medium" with timing.
    named_in_logs: float = 0.45
    busy_logs: float = 0.05  # the pattern is busy (BUSY_PATTERN_EVENTS), not a blip
    timeouts: float = 0.1  # the errors are timeouts/refusals: the dependency is slow or gone
    logs_near_onset: float = 0.1  # its errors started with the incident (10 min before to 15 after)
    # The dependency's own metrics stepped near the onset: independent confirmation.
    metrics_moved: float = 0.25
    saturated: float = 0.15  # and one of them is saturated (a pool, CPU or memory at the limit)
    metrics_lead_symptom: float = 0.1  # they moved before (or with) the service's symptom
    # Timeouts to something the logs do not name: worth listing, rarely the answer alone.
    unnamed_timeouts: float = 0.35
    # The errors say the name does not resolve or the certificate expired: the failure is named.
    dns_or_certificate: float = 0.2
    # The vendor's own status page says it is degraded near the onset: independent confirmation.
    status_page: float = 0.2
    status_page_alone: float = 0.3  # no log or metric of ours involves it: a lead, listed low
    unnamed_near_onset: float = 0.1


@dataclass(frozen=True)
class CapacityWeights:
    """The service running out of something (CPU, memory, a pool, threads)."""

    saturated_metric: float = 0.45  # one of the service's own percent metrics at the limit
    saturated_moved: float = 0.2  # and it stepped near the onset
    exhaustion_logs: float = 0.45  # logs saying a pool, memory, threads or a disk ran out
    exhaustion_near_onset: float = 0.1
    both: float = 0.3  # the metric at its ceiling and the logs saying so: timing and content agree
    batch_job: float = 0.05  # a batch job running then explains what consumed it


@dataclass(frozen=True)
class TrafficWeights:
    """More requests than usual as the cause."""

    surge: float = 0.5  # request rate up 1.8x near the onset: medium by itself
    big_surge: float = 0.15  # 3x or more
    symptom_follows: float = 0.15  # the service's symptom stepped right after the traffic did
    # A change that landed in the half hour before, and whose content names what is failing,
    # explains the traffic too (retries, loops).
    recent_change_factor: float = 0.7


@dataclass(frozen=True)
class RunbookWeights:
    """How well a runbook page matches the alert (a score of 1.0 is needed to be shown)."""

    service_label: float = 1.0  # labelled with the service
    service_in_title: float = 1.0
    runbook_label: float = 0.5  # labelled or titled as a runbook/playbook
    words_shared: float = 2.0  # times the share of the alert's words found in the page
    search_score: float = 0.5  # times the search engine's own relevance (capped at 1)
    # Words of what is failing (the error text, the dependency) found in the page: a page about
    # this failure beats one that merely names the service. Full weight at 2 such words.
    failure_words: float = 2.0
    failure_words_enough: int = 2
    threshold: float = 1.0
    # A page last edited more than two years before the alert ranks below a current one that
    # fits almost as well; it is still shown when it is the only page that fits.
    stale_after_days: int = 730
    stale_penalty: float = 0.5


CHANGE = ChangeWeights()
DEPENDENCY = DependencyWeights()
CAPACITY = CapacityWeights()
TRAFFIC = TrafficWeights()
RUNBOOK = RunbookWeights()
