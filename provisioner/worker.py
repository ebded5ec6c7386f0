"""The provisioner's NATS side: a durable JetStream consumer on the per-cluster subjects.

A real pipeline (Argo Events) listens with a plain NATS subscription to the same subjects; the
JetStream consumer here receives the same messages and survives restarts. Messages are handled
one at a time: the GitOps repository has one working tree.
"""

import asyncio
import contextlib
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

from registry import contract, natsutil

from . import workflow
from .gitops import Repository
from .settings import Settings

log = logging.getLogger(__name__)


def repository(settings) -> Repository:
    path = settings.config["PROVISIONER_GITOPS_REPO"] or Path(settings.instance_path) / "gitops"
    return Repository(Path(path), web_url=settings.config["PROVISIONER_GITOPS_WEB_URL"]).ensure()


def status_body(message: dict, status: str, note: str) -> dict:
    return {
        "prefix": message.get("licencePlate", ""),
        "clusterName": message.get("cluster_name", ""),
        "workflow": message.get("workflow", ""),
        "status": status,
        "message": note,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


class ReportNotSent(Exception):
    """A status report could not be published: the messaging failed, not the workflow."""


class ProvisionerWorker(natsutil.LoopThread):
    """Runs the reference provisioner in a daemon thread with its own event loop."""

    def __init__(self, settings):
        """``settings``: anything with ``config`` (a mapping) and ``instance_path``: its
        :class:`Settings`, or a registry app's (development runs it in-process)."""
        super().__init__(name="provisioner")
        self.settings = Settings.of(settings.config, settings.instance_path)
        self.repo = repository(self.settings)
        self.ready = threading.Event()
        self.runs: list[workflow.Run] = []

    async def main(self) -> None:
        link = natsutil.new_link(self.settings.config["NATS_URL"])
        nc = await natsutil.connect(
            self.settings.config["NATS_URL"], "reference-provisioner", self.stopping, link
        )
        if nc is None:
            return
        try:
            js = nc.jetstream()
            subscription = await self._subscribe(js)
            if subscription is None:
                return
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    messages = await subscription.fetch(batch=1, timeout=1)
                except (NatsTimeout, TimeoutError):  # nats-py raises either when none came
                    continue
                except Exception as exc:  # NATS away for a moment: the client reconnects
                    log.debug("Provisioner could not fetch (%s); retrying", exc)
                    await natsutil.sleep_unless(self.stopping, 0.5)
                    continue
                for msg in messages:
                    try:
                        await self._handle(js, msg)
                    except Exception:
                        # Never let one message stop the provisioner: it comes back later.
                        log.exception("Provisioning message on %s not handled", msg.subject)
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=5)
        finally:
            await natsutil.close(nc)

    async def _subscribe(self, js):
        stream = self.settings.config["NATS_STREAM"]
        while True:
            if self.stopping.is_set():
                return None
            try:
                info = await js.stream_info(stream)
                break
            except Exception as exc:  # the registry creates the stream; wait for it
                log.info("Waiting for stream %s (%s)", stream, exc)
                await asyncio.sleep(1)
        subjects = [s for s in info.config.subjects if s != contract.STATUS_SUBJECT]
        durable = self.settings.config["PROVISIONER_DURABLE"]
        # Create the durable, or bring its filters up to date with the stream's clusters.
        await js.add_consumer(
            stream,
            config=ConsumerConfig(
                name=durable,
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.settings.config["PROVISIONER_ACK_WAIT_SECONDS"],
                max_deliver=-1,
                filter_subjects=subjects,
            ),
        )
        return await js.pull_subscribe_bind(durable=durable, stream=stream)

    async def _handle(self, js, msg) -> None:
        try:
            message = json.loads(msg.data)
        except (ValueError, RecursionError):
            message = None
        try:
            problems = contract.validate_provisioning_message(message)
        except Exception as exc:  # a shape so far off the contract that the check trips on it
            problems = [f"unreadable message ({type(exc).__name__}: {exc})"]

        async def publish(status: str, note: str) -> None:
            body = status_body(message if isinstance(message, dict) else {}, status, note)
            await js.publish(contract.STATUS_SUBJECT, json.dumps(body).encode())

        if problems:
            log.warning("Invalid provisioning message on %s: %s", msg.subject, problems)
            if isinstance(message, dict) and message.get("workflow"):
                await publish(
                    contract.FAILED, "Invalid provisioning message: " + "; ".join(problems)
                )
            await msg.term()
            return

        loop = asyncio.get_running_loop()

        def report(status: str, note: str) -> None:
            # From the workflow's thread: publish on the loop and wait, so steps stay in order.
            try:
                asyncio.run_coroutine_threadsafe(publish(status, note), loop).result(timeout=30)
            except Exception as exc:
                raise ReportNotSent(f"{type(exc).__name__}: {exc}") from exc

        rules = workflow.rules_from(self.settings.config["PROVISIONER_FAIL_RULES"])
        heartbeat = asyncio.create_task(self._in_progress(msg))
        try:
            run = await asyncio.to_thread(workflow.run, message, self.repo, report, rules)
        except ReportNotSent as exc:
            # NATS, not the workflow, failed (a node away, a leader being elected): run it again
            # soon; it is idempotent (no second commit) and the registry ignores repeated steps.
            log.warning(
                "Workflow %s paused: a report could not be published (%s); it runs again",
                message.get("workflow"),
                exc,
            )
            with contextlib.suppress(Exception):
                await msg.nak(delay=2)
            return
        except workflow.InjectedFailure as exc:
            await publish(contract.FAILED, str(exc))
        except Exception as exc:
            log.exception("Workflow %s failed", message.get("workflow"))
            await publish(contract.FAILED, f"{type(exc).__name__}: {exc}")
        else:
            self.runs.append(run)
        finally:
            heartbeat.cancel()
        await msg.ack()

    async def _in_progress(self, msg) -> None:
        """While a workflow runs, tell NATS it is still being worked on, so it is not handed
        out again however long the workflow takes."""
        every = self.settings.config["PROVISIONER_ACK_WAIT_SECONDS"] / 4
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # NATS away: the next one may get through
                await msg.in_progress()
