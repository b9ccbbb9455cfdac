"""The wiser analyser, mechanism by mechanism: content against timing, nothing after the onset,
status pages and provider metrics, DNS and certificates, capacity and batch jobs, calibration.

Pure functions first (relevance, vocabulary), then small worlds through `analyse`.
"""

from __future__ import annotations

from bot.analyse.analyser import analyse
from bot.analyse.relevance import content_match, inert_reason, words
from bot.analyse.vocabulary import find_host, find_vendor, metric_upstream
from bot.core.models import CauseKind, Confidence
from tests.helpers.evidence import ALERT, ERRORS, SERVICE, WINDOW, deploy, event, log, metric, monitor

# --- pure functions --------------------------------------------------------------------------


def test_words_split_identifiers_and_paths_and_drop_generic_and_service_words() -> None:
    found = words("NullPointerException at PriceCalculator.applyDiscount (checkout-api)", ["checkout-api", "checkout"])
    assert {"pricecalculator", "pric", "calculator", "discount"} <= found
    assert words("pricing") == words("price")
    assert "checkout" not in found
    assert "exception" not in found
    assert "discount" in words("applies stacked discounts")  # light stemming


def test_content_match_names_the_shared_words_most_specific_first() -> None:
    change = words("Add orders_customer_created_idx index; db/migrations/0042_orders_index.sql")
    symptom = words("slow query: seq scan on orders filtering customer_id, created_at")
    assert content_match(change, symptom)[:1] == ["customer"] or "orders" in content_match(change, symptom)
    assert content_match(words("Update footer copy"), symptom) == []


def test_inert_changes_by_files_then_labels_then_title() -> None:
    assert inert_reason(["README.md", "docs/runbook.md"], [], []) is not None
    assert inert_reason(["web/src/locales/en/footer.json"], [], []) is not None
    assert inert_reason(["src/payments/client.py", "README.md"], ["documentation"], []) is None  # files decide
    assert inert_reason([], ["documentation"], ["Refresh docs"]) is not None
    assert inert_reason([], [], ["Update footer copy"]) is not None
    assert inert_reason([], [], ["Copy order lines on reorder"]) is None  # "copy" the verb is code
    assert inert_reason([], ["bug"], ["Fix typo"]) is None  # a code label outweighs the title


def test_hosts_and_vendors_are_read_from_error_text_without_paths() -> None:
    line = "PaymentProviderTimeout: POST https://api.stripe.com/v1/payment_intents?key=sk_live_x timed out"
    assert find_host(line) == "api.stripe.com"
    assert find_vendor("api.stripe.com") == "Stripe"
    assert find_host("curl: (6) Could not resolve host: ledger.internal.acme.net") == "ledger.internal.acme.net"
    assert find_host("x509: certificate has expired for auth.partner.io:443") == "auth.partner.io"
    assert find_host("NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)") is None


def test_a_metric_names_its_provider_by_tag_not_by_its_service() -> None:
    assert metric_upstream("p95:payments.provider.latency{service:payments-api,provider:stripe}") == "Stripe"
    assert metric_upstream("avg:http.client.duration{service:x,peer.hostname:geo.partner.io}") == "geo.partner.io"
    assert metric_upstream(ERRORS) is None


# --- content against timing -------------------------------------------------------------------

NPE = "NullPointerException at PriceCalculator.applyDiscount(PriceCalculator.java:88)"


def _symptom() -> list:
    return [monitor(), metric(ERRORS, [(-999, 0.3), (-10, 9.5)]), log(NPE, 340, -9.8)]


def test_a_copy_only_deploy_right_before_is_ranked_down_with_the_reason() -> None:
    world = [*_symptom(),
             deploy("c0ffee1", "v2.4.2", -11, pr_title="Update footer copy",
                    files=("web/src/locales/en/footer.json",), labels=("copy",))]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    assert signals.top.kind == CauseKind.UNKNOWN
    assert all(h.confidence == Confidence.LOW for h in signals.hypotheses)
    (down,) = signals.ranked_down
    assert down.evidence_id == world[3].id
    assert "changed only" in down.reason


def test_the_deploy_whose_content_names_the_symptom_beats_an_unrelated_closer_one() -> None:
    world = [*_symptom(),
             deploy("aaa1111", "v3.0.0", -40, pr_title="Apply stacked discounts in PriceCalculator",
                    files=("src/main/java/com/acme/checkout/PriceCalculator.java",)),
             deploy("bbb2222", "v3.0.1", -12, pr_title="Tweak logging format", files=("src/logging/Format.java",))]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    assert signals.top.subject == world[3].id
    assert any("PriceCalculator" in r for r in signals.top.reasons)  # as the change spelled it


def test_timing_alone_is_never_high() -> None:
    world = [*_symptom(), deploy("ddd4444", "v3.1.0", -11, pr_title="Tweak logging format",
                                 files=("src/logging/Format.java",))]
    top = analyse(ALERT, SERVICE, WINDOW, world).top
    assert top.kind == CauseKind.DEPLOY
    assert top.confidence == Confidence.MEDIUM
    assert "nothing it changed names what is failing" in top.reasons


def test_a_flag_enabled_after_the_errors_began_is_never_ranked() -> None:
    world = [*_symptom(), event("Feature flag fast-checkout enabled for 100% of users", -8, source="launchdarkly")]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    assert all(h.subject != world[3].id for h in signals.hypotheses)
    (down,) = signals.ranked_down
    assert down.reason == "landed 2 min after the symptom began"
    assert all(h.at is None or h.at <= signals.onset for h in signals.hypotheses)


# --- dependencies ------------------------------------------------------------------------------

STRIPE_TIMEOUT = "PaymentProviderTimeout: POST https://api.stripe.com/v1/payment_intents timed out after 10s"
PROVIDER = "p95:payments.provider.latency{service:checkout-api,provider:stripe}"


def test_a_vendor_status_page_and_provider_metric_make_a_named_high_dependency() -> None:
    world = [*_symptom()[:2], log(STRIPE_TIMEOUT, 900, -9.5), metric(PROVIDER, [(-999, 0.3), (-11, 9.8)]),
             event("Stripe: Degraded performance - API requests", -14, source="statuspage",
                   tags=("statuspage_page:stripe",)),
             deploy("c0ffee1", "v2.4.2", -11, pr_title="Update footer copy", files=("templates/README.md",))]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    top = signals.top
    assert (top.kind, top.subject, top.confidence) == (CauseKind.DEPENDENCY, "Stripe", Confidence.HIGH)
    assert top.summary == "Stripe (api.stripe.com)"
    assert world[4].id in top.evidence_ids
    assert world[3].id in top.evidence_ids
    assert signals.status_events[0].vendor == "Stripe"
    assert not signals.status_events[0].resolved
    assert [d.evidence_id for d in signals.ranked_down] == [world[5].id]


def test_a_dns_failure_names_the_host() -> None:
    world = [*_symptom()[:2], log("getaddrinfo ENOTFOUND geo.partner-api.io", 420, -9.7)]
    top = analyse(ALERT, SERVICE, WINDOW, world).top
    assert top.kind == CauseKind.DEPENDENCY
    assert top.subject == "geo.partner-api.io"
    assert top.confidence in (Confidence.MEDIUM, Confidence.HIGH)
    assert any("does not resolve" in r for r in top.reasons)


def test_an_expired_certificate_names_the_host() -> None:
    world = [*_symptom()[:2],
             log("x509: certificate has expired or is not yet valid: current time 2026-05-12T13:50:02Z is after "
                 "2026-05-12T13:50:00Z for auth.partner.io:443", 300, -9.9)]
    top = analyse(ALERT, SERVICE, WINDOW, world).top
    assert top.kind == CauseKind.DEPENDENCY
    assert top.subject == "auth.partner.io"


# --- capacity -------------------------------------------------------------------------------------

def test_database_connection_slots_at_the_ceiling_with_a_batch_job_are_capacity_not_config() -> None:
    world = [monitor(), metric(ERRORS, [(-999, 0.2), (-10, 6.0)]),
             metric("max:postgresql.percent_usage_connections{db:orders}", [(-999, 45), (-11, 100)], unit="percent"),
             log("psycopg2.OperationalError: FATAL: remaining connection slots are reserved for "
                 "non-replication superuser connections", 800, -9.8),
             event("CronJob nightly-reconcile started", -14, source="kubernetes")]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    top = signals.top
    assert top.kind == CauseKind.CAPACITY
    assert top.confidence == Confidence.HIGH
    assert world[4].id in top.evidence_ids
    assert "nightly-reconcile" in top.summary
    assert all(h.kind != CauseKind.CONFIG for h in signals.hypotheses)
    assert next(c for c in signals.changes if c.evidence_id == world[4].id).kind == "batch"


def test_nothing_fits_gives_an_honest_unknown() -> None:
    world = [monitor(), metric(ERRORS, [(-999, 0.3)], noise=0.2),
             deploy("eee5555", "v1.0.0", -4 * 24 * 60, pr_title="Old change")]
    assert analyse(ALERT, SERVICE, WINDOW, world).top.kind == CauseKind.UNKNOWN


def test_a_resolved_status_page_is_no_dependency_evidence() -> None:
    world = [*_symptom()[:2],
             event("Stripe: Resolved - API requests", -12, source="statuspage", tags=("statuspage_page:stripe",))]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    assert signals.status_events[0].resolved
    assert all(h.subject != "Stripe" for h in signals.hypotheses)


def test_shared_words_are_said_as_the_change_spelled_them() -> None:
    # Matched on stems; a reason in the brief used to read "names engin, pricecalculator".
    world = [monitor(), metric(ERRORS, [(-999, 0.1), (-3, 8.0)]),
             log("PricingEngine failed in PriceCalculator.applyDiscount: engine not ready", 400, -3),
             deploy("9f1c2ab", "v2.3.1", -5, description="PriceCalculator: new discount engine",
                    pr_title="New discount engine")]
    signals = analyse(ALERT, SERVICE, WINDOW, world)
    [change] = [c for c in signals.changes if c.kind == "deploy"]
    assert "PriceCalculator" in change.content_match
    assert "engine" in change.content_match
    assert all(word != "engin" for word in change.content_match)
