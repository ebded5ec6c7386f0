"""Whether a server this process depends on (NATS, SMTP) is reachable, as it last found it.

It says so in the log once when the server is lost and once when it is back, however many
attempts fail in between, and keeps the time and the reason for the readiness check.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass
class Availability:
    what: str  # "NATS at nats://...", "SMTP server"
    reachable: bool | None = None  # None: not tried yet
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    error: str | None = None

    def up(self) -> None:
        if self.reachable is False:
            log.warning("%s is reachable again", self.what)
        if not self.reachable:
            self.reachable, self.since, self.error = True, datetime.now(UTC), None

    def down(self, error: str) -> None:
        if self.reachable is not False:
            log.warning("%s is not reachable (%s); retrying until it is", self.what, error)
            self.reachable, self.since = False, datetime.now(UTC)
        self.error = error
