"""Imports every model so that metadata is complete wherever the app is built."""

from .audit.models import AuditEvent  # noqa: F401
from .auth.models import ProviderSession, User  # noqa: F401
from .notifications.models import OutboxEmail  # noqa: F401
from .operations.models import StuckReminder  # noqa: F401
from .products.models import Product, ProductContact, ProductNamespace  # noqa: F401
from .provisioning.models import (  # noqa: F401
    DeadLetter,
    OutboxMessage,
    ProvisioningTarget,
    ServiceAccount,
)
from .reference.models import Cluster, Ministry, QuotaOption  # noqa: F401
from .requests.models import Request, RequestEvent  # noqa: F401
