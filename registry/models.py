"""Imports every model so that metadata is complete wherever the app is built."""

from .api.models import ApiCall, ApiIdempotency, ApiToken  # noqa: F401
from .audit.models import AuditEvent  # noqa: F401
from .auth.models import ProviderSession, RateLimit, RateLimitHit, ServiceAccount, User  # noqa: F401
from .capacity.models import SavingOffer, ScheduleRun  # noqa: F401
from .operations.models import StuckReminder  # noqa: F401
from .outbox.models import OutboxEmail, OutboxMessage  # noqa: F401
from .products.models import (  # noqa: F401
    Product,
    ProductContact,
    ProductContactHistory,
    ProductNamespace,
)
from .provisioning.models import DeadLetter, ProvisioningTarget  # noqa: F401
from .reference.models import Cluster, Ministry, QuotaOption  # noqa: F401
from .requests.models import Request, RequestEvent, TemporaryIncrease  # noqa: F401
from .webhooks.models import Webhook, WebhookDelivery  # noqa: F401
