"""Verified webhook deliveries per second, end to end, through the real server; then a crash.

Throughput: ``shelfwise serve --workers 2`` on a loopback port, a private database (SQLite in a
temporary folder; PostgreSQL in a database created and dropped here), and N genuine Shopify
``orders/create`` deliveries (signed, each a different order) sent by concurrent keep-alive
clients. Measured from the first request to the moment the last delivery is processed (verified,
stored, answered, parsed, ingested): that is "end to end". The baseline, measured in the same run
on the same backend, is the bare work with no HTTP and no queue: parse each body and ingest it in
this process, one transaction per delivery. Target: at least 300 deliveries/s on SQLite.

Fault run: a burst is sent and the whole server (master and workers) is killed with SIGKILL once
some of it was acknowledged. Every delivery that got a 2xx must already be in the database; the
server is started again, its workers pick up what was stored but not processed, the deliveries
that never got an answer are sent again (as Shopify retries them), and every acknowledged delivery
must end up processed, every order ingested exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from adapters.base import Delivery
from adapters.shopify import ShopifyAdapter
from benchmarks.ingest.load import SECRET, Prepared, deliveries, send_all
from benchmarks.ingest.server import Server
from engine.storage import tables as t
from engine.storage.store import Store
from webhooks import queue

TARGET_PER_SECOND = 300.0
GROUP = "bench"
POSTGRES_ADMIN_URL = os.environ.get("SHELFWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LINES_PER_ORDER = 3


_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def prepare(database_url: str) -> None:
    store = Store(database_url)
    store.create_dataset_group(GROUP)
    store.connect(GROUP, "shopify", SECRET, {"shop_domain": "bench.myshopify.com"})
    store.close()


def wait_settled(store: Store, expected: int, timeout: float) -> float:
    """Poll until ``expected`` deliveries are settled and none waits; returns the moment."""
    deadline = time.perf_counter() + timeout
    group_id = store.get_dataset_group(GROUP).id
    while True:
        counts = queue.count_by_status(store, group_id)
        waiting = sum(counts.get(s, 0) for s in (*queue.PENDING, queue.PROCESSING))
        settled = sum(counts.get(s, 0) for s in queue.SETTLED)
        if settled >= expected and waiting == 0:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"not settled after {timeout}s: {counts}")
        time.sleep(0.05)


def statuses_by_webhook_id(store: Store) -> dict[str, str]:
    group_id = store.get_dataset_group(GROUP).id
    with store.session() as s:
        rows = s.execute(
            select(t.WebhookDelivery.dedupe_key, t.WebhookDelivery.status).where(
                t.WebhookDelivery.dataset_group_id == group_id, t.WebhookDelivery.dedupe_key.isnot(None)
            )
        ).all()
    return {key: status for key, status in rows}


def throughput(database_url: str, prepared: list[Prepared], args: argparse.Namespace, log: Path) -> dict[str, Any]:
    prepare(database_url)
    server = Server(database_url, workers=args.workers, log=log).start()
    store = Store(database_url, create=False)
    progress(f"server up on {database_url.split(':')[0]}; sending {len(prepared)} deliveries")
    try:
        started = time.perf_counter()
        results = send_all(f"{server.url}/webhooks/shopify/{GROUP}", prepared, concurrency=args.concurrency)
        answered = time.perf_counter()
        progress(f"all answered in {answered - started:.1f}s")
        done = wait_settled(store, len(prepared), timeout=600)
        progress(f"all processed in {done - started:.1f}s")
        counts = queue.count_by_status(store, store.get_dataset_group(GROUP).id)
        interactions = store.count_interactions(GROUP)
    finally:
        server.stop()
        store.close()
    latencies = sorted(results.latencies)
    return {
        "deliveries": len(prepared),
        "acknowledged": len(results.acked),
        "refused": len(results.refused),
        "unanswered": len(results.unanswered),
        "processed": counts.get(queue.PROCESSED, 0),
        "interactions": interactions,
        "ackPerSecond": len(results.acked) / (answered - started),
        "endToEndPerSecond": counts.get(queue.PROCESSED, 0) / (done - started),
        "ackP50Ms": 1000 * statistics.median(latencies) if latencies else None,
        "ackP99Ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
    }


def direct_baseline(database_url: str, prepared: list[Prepared]) -> float:
    """Parse and ingest each delivery in this process: no HTTP, no signature, no queue."""
    store = Store(database_url)
    store.create_dataset_group("direct")
    adapter = ShopifyAdapter()
    progress("baseline: parse and ingest in this process")
    started = time.perf_counter()
    for item in prepared:
        store.ingest("direct", adapter.parse(Delivery.of(item.body, item.headers)))
    elapsed = time.perf_counter() - started
    store.close()
    return len(prepared) / elapsed


def fault_run(database_url: str, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    prepare(database_url)
    prepared = deliveries(args.fault_deliveries, offset=10_000_000)
    url_path = f"/webhooks/shopify/{GROUP}"
    server = Server(database_url, workers=args.workers, log=log).start()
    enough = threading.Event()
    outcome: dict[str, Any] = {}

    def burst() -> None:
        outcome["results"] = send_all(
            server.url + url_path,
            prepared,
            concurrency=args.concurrency,
            on_ack=enough,
            ack_target=args.fault_deliveries // 3,
            timeout=5,
        )

    sender = threading.Thread(target=burst)
    sender.start()
    if not enough.wait(120):
        server.kill()
        raise RuntimeError("the burst was not acknowledged in time")
    server.kill()
    progress("fault run: server killed with SIGKILL mid-burst")
    sender.join(300)
    results = outcome["results"]

    store = Store(database_url, create=False)
    try:
        stored = statuses_by_webhook_id(store)
        acked = set(results.acked)
        lost = sorted(acked - set(stored))
        waiting_after_kill = sum(1 for s in stored.values() if s in (*queue.PENDING, queue.PROCESSING))

        restarted = Server(database_url, workers=args.workers, log=log).start()
        progress("fault run: server restarted")
        try:
            wait_settled(store, len(stored), timeout=300)
            # Shopify retries what got no 2xx, under the same webhook id.
            unanswered = [p for p in prepared if p.webhook_id not in acked]
            progress(f"fault run: the restarted workers caught up; retrying the {len(unanswered)} unanswered")
            retried = send_all(restarted.url + url_path, unanswered, concurrency=args.concurrency)
            wait_settled(store, len(stored) + len(unanswered), timeout=300)
            progress("fault run: retries processed")
        finally:
            restarted.stop()
        final = statuses_by_webhook_id(store)
        interactions = store.count_interactions(GROUP)
    finally:
        store.close()
    not_processed = sorted(w for w in acked if final.get(w) != queue.PROCESSED)
    return {
        "sent": len(prepared),
        "acknowledgedBeforeKill": len(acked),
        "noAnswerAtKill": len(results.unanswered) + len(results.refused),
        "storedAtKill": len(stored),
        "storedButUnprocessedAtKill": waiting_after_kill,
        "acknowledgedButNotStored": len(lost),
        "retriedAfterRestart": len(unanswered),
        "retriesAcknowledged": len(retried.acked),
        "acknowledgedAndProcessedAfterRestart": len(acked) - len(not_processed),
        "acknowledgedButNotProcessed": len(not_processed),
        "processedTotal": sum(1 for s in final.values() if s == queue.PROCESSED),
        "interactions": interactions,
        "expectedInteractions": LINES_PER_ORDER * len(prepared),
        "pass": not lost and not not_processed and interactions == LINES_PER_ORDER * len(prepared),
    }


def postgres_database() -> tuple[str | None, str | None]:
    """A private database on the PostgreSQL server (URL, None), or (None, why not)."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"shelfwise_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # unreachable server, no rights: the PostgreSQL rows are skipped
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}", None


def drop_postgres(url: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def report_line(name: str, run: dict[str, Any], baseline: float) -> str:
    return (
        f"{name:<11} {run['acknowledged']:>5}/{run['deliveries']:<5} {run['ackPerSecond']:>8.0f} "
        f"{run['endToEndPerSecond']:>13.0f} {run['ackP50Ms']:>8.1f} {run['ackP99Ms']:>8.1f} {baseline:>14.0f}   "
        f"processed={run['processed']} interactions={run['interactions']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000, help="deliveries per throughput run")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    parser.add_argument("--workers", type=int, default=2, help="shelfwise serve --workers")
    parser.add_argument("--fault-deliveries", type=int, default=1500, help="deliveries in the crashed burst")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    report: dict[str, Any] = {"cpus": os.cpu_count(), "workers": args.workers, "concurrency": args.concurrency}
    prepared = deliveries(args.deliveries)
    with tempfile.TemporaryDirectory(prefix="shelfwise-ingest-") as tmp:
        work = Path(tmp)
        report["sqlite"] = throughput(f"sqlite:///{work / 'throughput.db'}", prepared, args, work / "server.log")
        report["sqlite"]["baselinePerSecond"] = direct_baseline(f"sqlite:///{work / 'direct.db'}", prepared)
        if args.no_postgres:
            report["postgresql"] = {"skipped": "--no-postgres"}
        else:
            url, why = postgres_database()
            if url is None:
                report["postgresql"] = {"skipped": why}
            else:
                try:
                    report["postgresql"] = throughput(url, prepared, args, work / "server.log")
                    report["postgresql"]["baselinePerSecond"] = direct_baseline(url, prepared)
                finally:
                    drop_postgres(url)
        report["fault"] = fault_run(f"sqlite:///{work / 'fault.db'}", args, work / "server.log")
    sqlite_rate = report["sqlite"]["endToEndPerSecond"]
    report["target"] = {"perSecond": TARGET_PER_SECOND, "sqlite": sqlite_rate, "pass": sqlite_rate >= TARGET_PER_SECOND}

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"ingest: {args.deliveries} signed Shopify orders/create deliveries, {args.concurrency} concurrent "
            f"senders, shelfwise serve --workers {args.workers}, {report['cpus']} CPUs (senders included)"
        )
        print("backend      acked/sent   acked/s  end-to-end/s   p50 ms   p99 ms  direct ingest/s")
        print(report_line("sqlite", report["sqlite"], report["sqlite"]["baselinePerSecond"]))
        if "skipped" in report["postgresql"]:
            print(f"postgresql  skipped: {report['postgresql']['skipped']}")
        else:
            print(report_line("postgresql", report["postgresql"], report["postgresql"]["baselinePerSecond"]))
        verdict = "PASS" if report["target"]["pass"] else "FAIL"
        print(
            f"target: >= {TARGET_PER_SECOND:.0f} verified deliveries/s end to end on SQLite: {verdict} "
            f"({sqlite_rate:.0f}/s)"
        )
        fault = report["fault"]
        print(
            f"fault run (SQLite, SIGKILL mid-burst): sent {fault['sent']}, acknowledged before the kill "
            f"{fault['acknowledgedBeforeKill']}, no answer {fault['noAnswerAtKill']}; stored at the kill "
            f"{fault['storedAtKill']} ({fault['storedButUnprocessedAtKill']} not yet processed), acknowledged but "
            f"not stored {fault['acknowledgedButNotStored']}; after restart and {fault['retriedAfterRestart']} "
            f"retries: acknowledged and processed {fault['acknowledgedAndProcessedAfterRestart']}, acknowledged "
            f"but not processed {fault['acknowledgedButNotProcessed']}, interactions {fault['interactions']} of "
            f"{fault['expectedInteractions']}: {'PASS' if fault['pass'] else 'FAIL'}"
        )
    return 0 if report["target"]["pass"] and report["fault"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
