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
)
PORTS = {"5432": "PostgreSQL", "6379": "Redis", "9200": "Elasticsearch", "9300": "Elasticsearch",
         "9092": "Kafka", "3306": "MySQL", "27017": "MongoDB", "11211": "Memcached", "5672": "RabbitMQ"}
TIMEOUT_LIKE = re.compile(
    r"timed?\s?out|timeout|connection refused|econnrefused|connection reset|no route to host"
    r"|unavailable|circuit\s*(?:breaker)?\s*(?:is\s+)?open|deadline exceeded|upstream", re.IGNORECASE)
POOL_EXHAUSTED = re.compile(r"pool.{0,40}(?:exhausted|not available|timed? ?out|timeout|full)"
                            r"|connection is not available|too many connections|no available connections?",
                            re.IGNORECASE)
MEMORY_EXHAUSTED = re.compile(r"outofmemory|out of memory|oomkill|memory limit", re.IGNORECASE)
THREADS_EXHAUSTED = re.compile(r"thread pool.{0,20}(?:exhausted|full|rejected)|rejectedexecution", re.IGNORECASE)
CONFIG_SOURCES = {"launchdarkly", "split", "optimizely", "flagsmith", "unleash", "configcat", "terraform",
                  "consul", "kubernetes", "helm", "argocd", "ansible", "chef", "puppet", "config",
                  "spinnaker"}
CONFIG_WORDS = re.compile(r"\b(?:config(?:uration)?|configmap|feature[ -]?flag|flag|toggle|terraform"
                          r"|setting|parameter|env(?:ironment)? var(?:iable)?s?|secret rotated|rollout)\b",
                          re.IGNORECASE)
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

# Metric name prefixes of common dependencies, for the follow-up read when logs blame one.
DEPENDENCY_METRIC_PREFIXES: dict[str, list[str]] = {
    "Elasticsearch": ["elasticsearch."], "OpenSearch": ["opensearch."], "PostgreSQL": ["postgresql."],
    "MySQL": ["mysql."], "Redis": ["redis."], "Memcached": ["memcache."], "Kafka": ["kafka."],
    "RabbitMQ": ["rabbitmq."], "Cassandra": ["cassandra."], "MongoDB": ["mongodb."],
}
_PERCENT = re.compile(r"percent|\bpct\b|utili[sz]ation|system\.cpu\.(?:user|system|total)", re.IGNORECASE)
KIND_PREFIX = re.compile(r"^\s*(?:event|config(?:uration)? change|deploy(?:ment)?)\s*:\s*", re.IGNORECASE)
STOPWORDS = {"the", "and", "for", "with", "from", "this", "that", "rate", "above", "below", "prod", "api"}


def find_upstream(text: str) -> str | None:
    for pattern, name in UPSTREAMS:
        if re.search(pattern, text, re.IGNORECASE):
            return name
    port = re.search(r":(\d{4,5})\b", text)
    return PORTS.get(port.group(1)) if port else None


def metric_role(query: str) -> MetricRole:
    name = query.split("{", 1)[0]
    for role, pattern in ROLE_WORDS:
        if pattern.search(name):
            return role
    return MetricRole.OTHER


def metric_upstream(query: str) -> str | None:
    """The dependency a series belongs to, judged from its metric name (not its service tag)."""
    return find_upstream(query.split("{", 1)[0])


def percent_like(query: str, unit: str | None) -> bool:
    return (unit or "").lower() in {"percent", "%", "pct"} or bool(_PERCENT.search(query))


def tokens(text: str) -> set[str]:
    """The words of a text that carry meaning (3+ characters, no stop words), lower-cased."""
    return {t for t in re.findall(r"[a-z0-9]{3,}", text.lower()) if t not in STOPWORDS}
