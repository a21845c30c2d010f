"""Run the API: gunicorn workers (each builds its own app after the fork), or one process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from engine.config import Settings

if TYPE_CHECKING:
    from engine.jobs.schedule import RetrainPolicy


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Called in each worker (no preload), so no database connection crosses a fork.
        from threadpoolctl import threadpool_limits

        from engine.api import create_app

        # A request's numpy work is one small matrix-vector product and a partial sort: BLAS
        # threads only add hand-offs there (4x slower at 20,000 items), and the workers already
        # use every core between them. Training runs elsewhere with its own limits.
        threadpool_limits(1, "blas")
        return create_app(self.settings)


def run_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    retrain: RetrainPolicy | None = None,
) -> None:
    """Serve until stopped; with ``retrain``, the retraining schedule runs beside the workers in
    one process of its own (engine/jobs/schedule.py) and stops with the server."""
    options = {
        "bind": f"{host}:{port}",
        "workers": max(1, workers),
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": "warning",
    }
    scheduler = None
    if retrain is not None and retrain.enabled:
        from engine.jobs.schedule import start_scheduler_process

        scheduler = start_scheduler_process(settings, retrain)
    try:
        _Gunicorn(settings, options).run()
    finally:
        if scheduler is not None:
            from engine.jobs.schedule import stop_scheduler_process

            stop_scheduler_process(scheduler)
