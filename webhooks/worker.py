"""The background worker: processes stored deliveries after their answer was sent.

One thread per app process (gunicorn worker), started by the app factory. The request that stored
a delivery wakes its own process's worker, so processing follows within milliseconds; an idle
worker also polls, so deliveries stored by a process that died (SIGKILL, a crash, a deploy) are
picked up by whichever worker looks next: on start-up, each worker first drains what was stored
but not processed. Claims go through the database (webhooks/queue.py), so any number of workers
in any number of processes share the queue without processing a delivery twice.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from engine.storage.store import Store
from webhooks import queue
from webhooks.processing import process_deliveries
from webhooks.queue import FAILED
from webhooks.settings import IntakeSettings

log = logging.getLogger(__name__)

#: How often the retention sweep runs (it is one UPDATE).
SWEEP_SECONDS = 600.0


class DeliveryWorker:
    """Drains the delivery queue of one database, in a daemon thread.

    The thread holds only a weak reference to the worker: when the app that owns it is gone (a
    test's app, a reloaded one) the thread ends by itself.
    """

    def __init__(self, store: Store, settings: IntakeSettings) -> None:
        self.store = store
        self.settings = settings
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_sweep = 0.0
        #: Deliveries this worker has settled (for tests and the benchmark's log line).
        self.processed = 0

    # ----------------------------------------------------------------- control
    def start(self) -> DeliveryWorker:
        if self._thread is None:
            self._thread = threading.Thread(
                target=_run, args=(weakref.ref(self), self._wake, self._stopped), name="shelfwise-webhooks", daemon=True
            )
            self._thread.start()
        return self

    def notify(self) -> None:
        """A delivery was stored: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # ----------------------------------------------------------------- work
    def run_once(self) -> int:
        """Claim and process one batch; returns how many deliveries were claimed."""
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            purged = queue.purge_expired(self.store, older_than=now - self.settings.retention_seconds)
            if purged:
                log.info("purged the raw bodies of %d deliveries past their retention", purged)
        claimed = queue.claim(self.store, limit=self.settings.batch_size, lease_seconds=self.settings.lease_seconds)
        todo = []
        for delivery_id, attempts in claimed:
            if attempts > self.settings.max_attempts:
                self.store.mark_delivery(
                    delivery_id,
                    FAILED,
                    error=f"gave up after {attempts - 1} attempts: processing never finished (the worker died?)",
                )
            else:
                todo.append(delivery_id)
        if todo:
            try:
                process_deliveries(self.store, todo, self.settings)
            except Exception:  # failures are recorded per delivery; this is a database outage
                log.exception("%d webhook deliveries could not be processed; their lease will expire", len(todo))
            self.processed += len(todo)
        return len(claimed)


def _run(ref: weakref.ref[DeliveryWorker], wake: threading.Event, stopped: threading.Event) -> None:
    failures = 0
    while not stopped.is_set():
        worker = ref()
        if worker is None:
            return
        wake.clear()
        try:
            busy = worker.run_once() >= worker.settings.batch_size
            failures = 0
        except Exception:
            failures += 1
            (log.exception if failures == 1 else log.debug)("webhook worker: the database is unavailable")
            busy = False
        poll = worker.settings.poll_seconds * min(2**failures, 30)
        linger = worker.settings.linger_seconds
        del worker  # never hold the worker while waiting: its app may go away meanwhile
        if not busy and wake.wait(poll) and linger > 0:
            # Woken by a delivery: give the ones arriving right behind it a moment to join its
            # batch. One transaction for several deliveries costs little more than for one.
            stopped.wait(linger)
