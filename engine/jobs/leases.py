"""Database leases: a named right to act that one process holds at a time and that lapses when its
holder dies.

The same code works on SQLite and PostgreSQL (no advisory locks, which SQLite lacks and which a
connection pool can hand to the wrong session): one conditional UPDATE takes an expired lease or
renews one's own, and the primary key lets only one INSERT create a missing one, so two processes
racing for a lease can never both win. Expiry, not release, is what protects against a holder
that was killed: nobody has to clean up after it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from engine.storage import Store
from engine.storage import tables as t

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def process_holder() -> str:
    """An id for this process that is unique across hosts and restarts (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease, seen from one would-be holder.

    Clocks across hosts are assumed to agree to well within ``ttl`` (NTP), as for any lease.
    """

    def __init__(
        self, store: Store, name: str, *, holder: str | None = None, ttl: float = 60.0, clock: Clock = time.time
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.store = store
        self.name = name
        self.holder = holder or process_holder()
        self.ttl = ttl
        self.clock = clock

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if this holder has it."""
        now = self.clock()
        with self.store.session() as s, s.begin():
            taken = s.execute(
                update(t.Lease)
                .where(t.Lease.name == self.name, or_(t.Lease.expires_at <= now, t.Lease.holder == self.holder))
                .values(holder=self.holder, expires_at=now + self.ttl, acquired_at=now)
            ).rowcount
        if taken:
            return True
        try:
            with self.store.session() as s, s.begin():
                s.add(t.Lease(name=self.name, holder=self.holder, expires_at=now + self.ttl, acquired_at=now))
        except IntegrityError:  # someone else holds it (or created it a moment ago)
            return False
        return True

    def renew(self) -> bool:
        """Push the expiry out; False if the lease was lost (it expired and someone took it)."""
        now = self.clock()
        with self.store.session() as s, s.begin():
            return bool(
                s.execute(
                    update(t.Lease)
                    .where(t.Lease.name == self.name, t.Lease.holder == self.holder)
                    .values(expires_at=now + self.ttl)
                ).rowcount
            )

    def release(self) -> None:
        """Let the next process take the lease now rather than when it expires."""
        with self.store.session() as s, s.begin():
            s.execute(
                update(t.Lease).where(t.Lease.name == self.name, t.Lease.holder == self.holder).values(expires_at=0.0)
            )

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease in a background thread while the body runs (a training can take
        minutes; the lease must not lapse under it)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    if not self.renew():
                        log.warning("lost the lease %s while holding it", self.name)
                        return
                except Exception:  # the database is briefly unreachable: try again next beat
                    log.exception("could not renew the lease %s", self.name)

        thread = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)
