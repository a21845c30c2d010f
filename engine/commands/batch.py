"""Batch jobs: ``shelfwise batch-inference`` and ``shelfwise batch-segment`` (JSON lines in and out)."""

from __future__ import annotations

import argparse
import sys

from engine.commands import Cli, emit, open_store
from engine.config import Settings


def _progress_bar(args: argparse.Namespace):
    """A tqdm bar on stderr for a person watching; none with --json or when stderr is not a terminal."""
    if args.json or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=_count_lines(args.input), unit="line", unit_scale=True, file=sys.stderr, dynamic_ncols=True)


def _count_lines(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return None  # the job itself reports the missing file


def _finish(args: argparse.Namespace, report, bar) -> None:
    if bar is not None:
        bar.close()
    if report.errors and not args.json:
        print(f"warning: {report.errors} lines could not be answered; see their 'error'", file=sys.stderr)
        for line in report.sample_errors:
            print(f"  {line}", file=sys.stderr)
    emit(
        args,
        report.to_dict(),
        f"wrote {report.lines} lines to {report.output_path} ({report.errors} with errors) "
        f"in {report.seconds:.2f} s: {report.lines_per_second:,.0f} lines/s",
    )


def _with_progress(args: argparse.Namespace, job, **kwargs) -> None:
    """Run a batch job with a progress bar (when there is a terminal) and report how it went."""
    bar = _progress_bar(args)
    try:
        report = job(on_progress=bar.update if bar is not None else None, **kwargs)
    except BaseException:
        if bar is not None:
            bar.close()
        raise
    _finish(args, report, bar)


def batch_inference_command(args: argparse.Namespace, settings: Settings) -> None:
    from engine.jobs.batch import batch_inference

    _with_progress(
        args,
        batch_inference,
        store=open_store(settings),
        dataset_group=args.dataset_group,
        solution_version=args.solution_version,
        campaign=args.campaign,
        input_path=args.input,
        output_path=args.output,
        num_results=args.num_results,
        filter_name=args.filter,
        live_history_limit=settings.live_history_limit,
    )


def batch_segment_command(args: argparse.Namespace, settings: Settings) -> None:
    from engine.jobs.batch import batch_segment

    _with_progress(
        args,
        batch_segment,
        store=open_store(settings),
        dataset_group=args.dataset_group,
        solution_version=args.solution_version,
        input_path=args.input,
        output_path=args.output,
        num_results=args.num_results,
        filter_name=args.filter,
    )


def register(cli: Cli) -> None:
    p = cli.command(
        "batch-inference",
        batch_inference_command,
        "recommendations for every line of a JSON-lines file (Personalize's batch inference format)",
    )
    p.add_argument("--dataset-group", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--solution-version", metavar="ID", help="answer with this solution version")
    source.add_argument("--campaign", metavar="NAME", help="answer as this campaign does (its configuration too)")
    p.add_argument("--input", required=True, metavar="IN.jsonl", help='lines like {"userId": "42"}')
    p.add_argument("--output", required=True, metavar="OUT.jsonl", help="a file, or a folder for IN.jsonl.out")
    p.add_argument("--num-results", type=int, default=25, metavar="N", help="items per line (1-500, default 25)")
    p.add_argument("--filter", metavar="NAME", help="a filter of the dataset group; lines may carry filterValues")

    s = cli.command(
        "batch-segment",
        batch_segment_command,
        "user segments for every line of a JSON-lines file (item-affinity, item-attribute-affinity)",
    )
    s.add_argument("--dataset-group", required=True)
    s.add_argument("--solution-version", required=True, metavar="ID")
    s.add_argument(
        "--input", required=True, metavar="IN.jsonl", help='lines like {"itemId": "105"} or {"itemAttributes": "..."}'
    )
    s.add_argument("--output", required=True, metavar="OUT.jsonl", help="a file, or a folder for IN.jsonl.out")
    s.add_argument("--num-results", type=int, default=25, metavar="N", help="users per segment (default 25)")
    s.add_argument(
        "--filter",
        metavar="NAME",
        help="a UserID filter (EXCLUDE UserID WHERE Users.X IN (...)); lines may carry filterValues",
    )
