"""The real intake on a loopback port, for adapter tests that go through the whole server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from engine.api import create_app
from engine.storage import Store
from tests.webhooks.support import settle
from webhooks.intake import WORKER_KEY


@contextmanager
def live_intake(store: Store, dataset_group: str, platform: str) -> Iterator[str]:
    """Serve the real app (with its delivery worker); yields the platform's webhook URL."""
    app = create_app(store=store, database_url=store.database_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/{platform}/{dataset_group}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        worker = app.extensions.get(WORKER_KEY)
        if worker is not None:
            worker.stop()


def settled(store: Store, dataset_group: str) -> list[str]:
    """The statuses of the group's deliveries once the worker has dealt with every one of them."""
    return [delivery.status for delivery in settle(store, dataset_group)]
