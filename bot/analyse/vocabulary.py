"""The analysis's vocabulary: the words, ports and metric names that tell what a piece of
evidence is about (a dependency, a timeout, a config change, a metric's role). Pure data and
the small functions that read it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.core.log_status import ERROR_STATUSES as ERROR_STATUSES  # re-exported: the one table


class MetricRole(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"
    TRAFFIC = "traffic"
    CPU = "cpu"
    MEMORY = "memory"
    POOL = "pool"
    OTHER = "other"


UPSTREAMS: tuple[tuple[str, str], ...] = (
    (r"elastic(?:search)?", "Elasticsearch"), (r"opensearch", "OpenSearch"),
    (r"postgres|pgbouncer|psql", "PostgreSQL"), (r"mysql|mariadb", "MySQL"), (r"redis", "Redis"),
    (r"memcache", "Memcached"), (r"kafka", "Kafka"), (r"rabbitmq|amqp", "RabbitMQ"),
    (r"cassandra", "Cassandra"), (r"mongo", "MongoDB"), (r"dynamodb", "DynamoDB"),
    (r"zookeeper", "ZooKeeper"), (r"\betcd\b", "etcd"), (r"\bs3\b", "S3"), (r"\bsqs\b", "SQS"),
    (r"\bconsul\b", "Consul"), (r"\bvault\b", "Vault"), (r"clickhouse", "ClickHouse"),
)
PORTS = {"5432": "PostgreSQL", "6379": "Redis", "9200": "Elasticsearch", "9300": "Elasticsearch",
         "9092": "Kafka", "3306": "MySQL", "27017": "MongoDB", "11211": "Memcached", "5672": "RabbitMQ"}
TIMEOUT_LIKE = re.compile(
    r"timed?\s?out|timeout|connection refused|econnrefused|connection reset|no route to host"
    r"|unavailable|circuit\s*(?:breaker)?\s*(?:is\s+)?open|deadline exceeded|upstream", re.IGNORECASE)
POOL_EXHAUSTED = re.compile(r"pool.{0,40}(?:exhausted|not available|timed? ?out|timeout|full)"
                            r"|connection is not available|too many (?:connections|clients)|no available connections?"
                            r"|connection slots?.{0,40}(?:exhausted|reserved|full)|remaining connection slots"
                            r"|max_connections|sorry, too many clients", re.IGNORECASE)
DISK_EXHAUSTED = re.compile(r"no space left on device|disk (?:is )?full|enospc|disk quota exceeded"
                            r"|filesystem.{0,20}full", re.IGNORECASE)
# A name that does not resolve, and a certificate past its end date: a dependency cause whose
# name is the host the error line carries (the fix is DNS or a certificate, not our code).
DNS_FAILURE = re.compile(r"nxdomain|could not resolve host|name or service not known|no such host"
                         r"|enotfound|temporary failure in name resolution|unknownhostexception"
                         r"|servfail|name resolution failed|dns (?:lookup|resolution) failed", re.IGNORECASE)
CERT_EXPIRED = re.compile(r"certificate (?:has )?expired|cert_has_expired|x509: certificate has expired"
                          r"|certificate is not yet valid or has expired|expired certificate"
                          r"|certificateexpiredexception|notafter", re.IGNORECASE)
MEMORY_EXHAUSTED = re.compile(r"outofmemory|out of memory|oomkill|memory limit|cannot allocate memory",
                              re.IGNORECASE)
THREADS_EXHAUSTED = re.compile(r"thread pool.{0,20}(?:exhausted|full|rejected)|rejectedexecution", re.IGNORECASE)
CONFIG_SOURCES = {"launchdarkly", "split", "optimizely", "flagsmith", "unleash", "configcat", "terraform",
                  "consul", "kubernetes", "helm", "argocd", "ansible", "chef", "puppet", "config",
                  "spinnaker"}
CONFIG_WORDS = re.compile(r"\b(?:config(?:uration)?|configmap|feature[ -]?flag|flag|toggle|terraform"
                          r"|setting|parameter|env(?:ironment)? var(?:iable)?s?|secret rotated|rollout)\b",
                          re.IGNORECASE)
# Scheduled and batch work: it competes for capacity; it does not change configuration.
BATCH_WORDS = re.compile(r"\b(?:cron(?:job)?|batch|backfill|nightly|scheduled job|etl|re-?index(?:ing)?"
                         r"|bulk (?:import|export|load)|vacuum|reconciliation job|export job)\b", re.IGNORECASE)
BATCH_DONE = re.compile(r"\b(?:completed|finished|succeeded|ended|done|stopped)\b", re.IGNORECASE)
BATCH_SOURCES = {"cron", "cronjob", "airflow", "batch", "jenkins-cron", "k8s-cronjob", "argo-workflows"}
# What an orchestrator or platform reports going wrong (Kubernetes, autoscalers, cloud quotas):
# a symptom to read, never a change that could have caused the incident.
FAILURE_EVENT = re.compile(
    r"oom-?kill(?:ed|ing)?|out of memory|crash-?loop|back-?off restarting|failed-?scheduling"
    r"|not-?trigger-?scale-?up|scale-?up failed|failed to scale|insufficient (?:cpu|memory)"
    r"|quota(?: '[^']{1,40}')? exceeded|exceeded quota|\bevict(?:ed|ion)\b|\bunhealthy\b|probe failed"
    r"|node ?not ?ready|failed to (?:pull|start|mount|create|attach)|err-?image-?pull|image-?pull-?back-?off"
    r"|\bpending pods?\b|pods? (?:could not|cannot) be scheduled",
    re.IGNORECASE)
STATUS_PAGE_SOURCES = {"statuspage", "status_page", "statuspage.io", "atlassian-statuspage"}
STATUS_DEGRADED = re.compile(r"degraded|outage|partial|major|disruption|elevated error|increased (?:error|latency)"
                             r"|investigating|identified|unavailable|latency", re.IGNORECASE)
STATUS_RESOLVED = re.compile(r"\b(?:resolved|operational|completed)\b", re.IGNORECASE)
# Outside providers named by their API host (or word): the name a reader knows them by.
VENDORS: tuple[tuple[str, str], ...] = (
    (r"stripe", "Stripe"), (r"twilio", "Twilio"), (r"sendgrid", "SendGrid"), (r"mailgun", "Mailgun"),
    (r"paypal|braintree", "PayPal"), (r"adyen", "Adyen"), (r"plaid", "Plaid"), (r"auth0", "Auth0"),
    (r"okta", "Okta"), (r"cloudflare", "Cloudflare"), (r"fastly", "Fastly"), (r"akamai", "Akamai"),
    (r"amazonaws|\baws\b", "AWS"), (r"googleapis|\bgcp\b", "Google Cloud"), (r"fcm|firebase", "Firebase"),
    (r"apple\.com|\bapns\b", "Apple Push"), (r"segment\.(?:io|com)", "Segment"), (r"shopify", "Shopify"),
    (r"github\.com|githubusercontent", "GitHub"), (r"slack\.com", "Slack"), (r"zendesk", "Zendesk"),
    (r"algolia", "Algolia"), (r"mapbox", "Mapbox"), (r"contentful", "Contentful"),
)
CLOUD_NAMESPACE = re.compile(r"(?:aws|gcp|azure)\.", re.IGNORECASE)
# A managed service belongs to its vendor: that vendor's status page speaks for it.
VENDOR_OF = {"S3": "AWS", "SQS": "AWS", "DynamoDB": "AWS"}
# Metric tags that name the far side of a call (the service tag names the caller, never these).
PEER_TAGS = re.compile(r"(?:^|[,{\s])(?:provider|vendor|upstream|dependency|peer\.service|peer\.hostname"
                       r"|out\.host|http\.host|target|remote_service|db\.instance):([\w.\-]+)", re.IGNORECASE)
_HOST = r"((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})"
HOST_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"https?://" + _HOST, re.IGNORECASE),  # the host of a URL (its path is not kept)
    re.compile(r"(?:resolve host|resolve|lookup|host|server|connect to|dial tcp|for|to)[:\s]+'?\"?" + _HOST
               + r"(?![\w.])", re.IGNORECASE),
    re.compile(_HOST + r":\d{2,5}\b", re.IGNORECASE),
    # A bare name ending in a common public or internal suffix ("ENOTFOUND geo.partner-api.io").
    re.compile(r"(?<![\w./-])((?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|app|cloud|internal|local|co|ai|svc))(?![\w-])",
               re.IGNORECASE),
)
# The last part of a name that is a file or class, not a domain ("PriceCalculator.java").
NOT_TLDS = {"java", "py", "go", "js", "ts", "rb", "kt", "scala", "php", "cs", "rs", "cpp", "json", "yaml", "yml",
            "xml", "txt", "log", "md", "html", "css", "sql", "conf", "cfg", "ini", "lock", "gradle", "jar",
            "class", "exe", "sh", "applydiscount"}
DEPLOY_WORDS = re.compile(r"\b(?:deploy(?:ed|ment)?|release[sd]?|rolled out|rollback)\b", re.IGNORECASE)
PROD_ENVS = {"production", "prod", "live", "prd"}
ROLE_WORDS: tuple[tuple[MetricRole, re.Pattern[str]], ...] = (
    (MetricRole.ERRORS, re.compile(r"error|5xx|exception|fail", re.IGNORECASE)),
    (MetricRole.LATENCY, re.compile(r"duration|latency|response_time|\bp(?:50|75|90|95|99)\b", re.I)),
    (MetricRole.POOL, re.compile(r"pool|connections?\.(?:active|used|pending|waiting)", re.IGNORECASE)),
    (MetricRole.CPU, re.compile(r"cpu", re.IGNORECASE)),
    (MetricRole.MEMORY, re.compile(r"mem(?:ory)?\b|\.mem\.|rss|heap", re.IGNORECASE)),
    (MetricRole.TRAFFIC, re.compile(r"hits|requests?\b|request\.count|throughput|\brps\b|\bqps\b", re.I)),
)

# A tag that keeps only failing responses: a status or response code tag at 4xx/5xx, or `error`.
ERROR_SCOPE = re.compile(r"(?:^|[,\s(])[\w.-]*(?:status|code|response)[\w.-]*:(?:[45]\d\d|[45]xx|errors?)(?![\w.])",
                         re.IGNORECASE)

# Metric name prefixes of common dependencies, for the follow-up read when logs blame one.
DEPENDENCY_METRIC_PREFIXES: dict[str, list[str]] = {
    "Elasticsearch": ["elasticsearch."], "OpenSearch": ["opensearch."], "PostgreSQL": ["postgresql."],
    "MySQL": ["mysql."], "Redis": ["redis."], "Memcached": ["memcache."], "Kafka": ["kafka."],
    "RabbitMQ": ["rabbitmq."], "Cassandra": ["cassandra."], "MongoDB": ["mongodb."],
}
_PERCENT = re.compile(r"percent|\bpct\b|utili[sz]ation|system\.cpu\.(?:user|system|total)", re.IGNORECASE)
KIND_PREFIX = re.compile(r"^\s*(?:event|config(?:uration)? change|deploy(?:ment)?)\s*:\s*", re.IGNORECASE)
STOPWORDS = {"the", "and", "for", "with", "from", "this", "that", "rate", "above", "below", "prod", "api"}


def find_host(text: str) -> str | None:
    """The first outside host an error line names: a URL's host, a host after "resolve host",
    "lookup", "connect to"... or a host:port. Paths and queries are never part of it."""
    for pattern in HOST_PATTERNS:
        for match in pattern.finditer(text):
            host = match.group(1).lower().rstrip(".")
            if host.rsplit(".", 1)[-1] not in NOT_TLDS and not host.replace(".", "").isdigit():
                return host
    return None


def find_vendor(text: str) -> str | None:
    for pattern, name in VENDORS:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    return None


def peer_of(query: str) -> str | None:
    """The far side a metric's tags name (``provider:stripe``, ``peer.hostname:api.stripe.com``)."""
    scope = query.split("{", 1)[1] if "{" in query else ""
    match = PEER_TAGS.search(scope)
    return match.group(1).lower() if match else None


def find_upstream(text: str) -> str | None:
    for pattern, name in UPSTREAMS:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    port = re.search(r":(\d{4,5})\b", text)
    return PORTS.get(port.group(1)) if port else None


def metric_role(query: str) -> MetricRole:
    name, _, scope = query.partition("{")
    role = next((role for role, pattern in ROLE_WORDS if pattern.search(name)), MetricRole.OTHER)
    # A request count scoped to failing responses (`{response_code:503}`, `{status_class:5xx}`)
    # counts errors: read as traffic, its rise would be blamed as a surge.
    if role in (MetricRole.TRAFFIC, MetricRole.OTHER) and ERROR_SCOPE.search(scope.split("}", 1)[0]):
        return MetricRole.ERRORS
    return role


def metric_upstream(query: str) -> str | None:
    """The dependency a series belongs to, judged from its metric name, else from a tag naming
    the far side of the call (never its service tag: that is the caller)."""
    name = query.split("{", 1)[0]
    # Cloud integration namespaces ("aws.elb.", "gcp.") measure our own resources, not the vendor.
    vendor = None if CLOUD_NAMESPACE.match(name.split(":")[-1]) else find_vendor(name)
    found = find_upstream(name) or vendor
    if found:
        return found
    peer = peer_of(query)
    return (find_upstream(peer) or find_vendor(peer) or peer) if peer else None


def percent_like(query: str, unit: str | None) -> bool:
    return (unit or "").lower() in {"percent", "%", "pct"} or bool(_PERCENT.search(query))


def tokens(text: str) -> set[str]:
    """The words of a text that carry meaning (3+ characters, no stop words), lower-cased."""
    return {t for t in re.findall(r"[a-z0-9]{3,}", text.lower()) if t not in STOPWORDS}


# --- what a change touched (bot.analyse.relevance) --------------------------------------------

# Paths that cannot break a running service: documentation, tests, CI, translations and copy,
# images. A change that touched only these is ranked down whatever its timing.
INERT_PATH = re.compile(
    r"(?:^|/)(?:docs?|documentation|adr|tests?|spec|specs|__tests__|e2e|testdata|fixtures|\.github"
    r"|locales?|i18n|l10n|translations|copy|content/copy)/"
    r"|\.(?:md|mdx|rst|adoc|txt|po|pot|png|jpe?g|gif|svg|ico)$"
    r"|(?:^|/)(?:README|CHANGELOG|CHANGES|LICENSE|NOTICE|CONTRIBUTING|CODEOWNERS|AUTHORS|SECURITY)(?:\.\w+)?$"
    r"|_test\.(?:go|py|rb)$|(?:^|/)test_[\w-]+\.py$|\.(?:test|spec)\.[jt]sx?$|Tests?\.(?:java|kt|cs)$"
    r"|(?:^|/)\.(?:editorconfig|gitignore|gitattributes|prettierrc|markdownlint\w*)$", re.IGNORECASE)
INERT_LABELS = {"documentation", "docs", "doc", "copy", "copywriting", "content", "tests", "test", "ci",
                "typo", "readme"}
INERT_TITLE = re.compile(
    r"^\s*(?:docs?|readme|changelog|typo)\b|\b(?:update|tweak|change|edit|fix|polish)\w*\s+(?:the\s+)?(?:\w+\s+)?"
    r"copy\b|\bcopy\s+(?:change|update|edit|tweak)s?\b|\bfix(?:es|ed)?\s+typos?\b|\bupdate\s+(?:the\s+)?readme\b",
    re.IGNORECASE)
# Words too common in code, logs and PRs to say that a change and a symptom are about the same
# thing (plus the service's own name, which the caller adds).
GENERIC_WORDS = {
    "error", "errors", "exception", "fail", "failed", "failure", "request", "respons", "response", "http", "https",
    "service", "server", "client", "prod", "production", "null", "true", "false", "value", "data", "code",
    "update", "updat", "change", "chang", "add", "new", "src", "main", "java", "internal", "test", "tests", "acme",
    "status", "version", "build", "module", "handler", "after", "before", "when", "time", "timed", "into",
    "more", "than", "none", "with", "from", "this", "that", "have", "will", "should", "could", "would", "also",
    "make", "only", "some", "used", "uses", "using", "there", "their", "them", "then", "were", "what",
    "which", "while", "about", "other", "each", "does", "done", "just", "like", "over", "same", "such", "file",
    "files", "line", "lines", "call", "calls", "bump", "release", "deploy", "merge", "pull", "feat", "chore",
    "fix", "fixes", "refactor", "rate", "count", "total", "trace", "duration", "latency", "percent", "avg",
    "sum", "max", "min", "p95", "p99", "as_rate", "env", "api", "app", "lib", "pkg", "com", "org", "net",
    "python", "golang", "node", "index.ts", "index.js", "util", "utils", "helper", "helpers", "common",
    "core", "base", "default", "config", "setting", "settings", "yaml", "json", "class", "method",
    "function", "object", "string", "number", "list", "item", "items", "user", "users", "level", "info",
    "warn", "debug", "critical", "message", "timeout", "unknown", "above", "below", "firing", "monitor",
    "resource", "name", "hits", "as_count", "rollup",
}

# Limited resources a metric can measure, by its name: a percent of these at the ceiling is
# capacity (the service or a database ran out of something), not a dependency outage.
RESOURCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pool", re.compile(r"pool|connections?|conn_|slots|max_conn|clients", re.IGNORECASE)),
    ("disk", re.compile(r"disk|\bfs\b|\.fs\.|filesystem|inodes|volume|storage", re.IGNORECASE)),
    ("memory", re.compile(r"mem(?:ory)?\b|\.mem\.|rss|heap", re.IGNORECASE)),
    ("threads", re.compile(r"thread", re.IGNORECASE)),
    ("cpu", re.compile(r"cpu", re.IGNORECASE)),
)
