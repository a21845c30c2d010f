"""Batch inference and batch segment jobs: Personalize's JSON-lines files in, JSON-lines out.

Every input line gets exactly one output line, in order: ``{"input": ..., "output": ...,
"error": null}``, or ``{"input": ..., "error": "why"}`` for a line that cannot be answered, so
one bad line never costs the rest of the file. Blank lines are not records and are skipped.
The output is written beside its final path and renamed into place when the job finishes, so a
failed job never leaves a half-written file where a finished one is expected.

Lines are answered a block at a time: the block's shoppers' latest events are read in one query
per few thousand shoppers, and the recipe answers the whole block at once where it can
(:func:`engine.recipes.batching.recommend_many`), which for ALS means one stacked solve and one
top-N pass for thousands of shoppers instead of one small solve each.

A batch-inference file of more than one block is answered by worker processes (one per core):
each reads its block's events, answers it and renders its JSON lines, and this process writes
the blocks in order. Reading rows from the database, parsing and rendering JSON are Python work
that holds the interpreter lock, so threads could not spread them over the cores; processes do.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from itertools import chain, pairwise
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import InvalidInput, NotFound, ShelfwiseError
from engine.recipes import Query, Ranked, Recipe, recipe_class
from engine.recipes.batching import BatchQuery, UserEvents, recommend_many
from engine.storage import Store
from engine.storage.db import in_memory
from engine.storage.histories import EventColumns, latest_events_of_users

if TYPE_CHECKING:
    from engine.serving.filters import UserFilter

#: Personalize's bounds: up to 500 items per inference line; a segment may hold millions of users.
MAX_INFERENCE_RESULTS = 500
MAX_SEGMENT_RESULTS = 5_000_000
MAX_ITEM_LIST = 500
MAX_ID_LENGTH = 256
DEFAULT_NUM_RESULTS = 25
#: Lines answered together: enough to amortise the per-block queries and solves, small enough
#: that a block's scores (lines × items) stay in memory comfortably.
BLOCK_LINES = 4096
#: Most worker processes a batch-inference job starts (each loads its own copy of the model).
MAX_WORKERS = 8

Progress = Callable[[int], None]


@dataclass
class BatchReport:
    job: str
    recipe: str
    solution_version: str
    input_path: str
    output_path: str
    lines: int = 0
    errors: int = 0
    seconds: float = 0.0
    #: The first few line errors, for a human to see what went wrong without opening the file.
    sample_errors: list[str] = field(default_factory=list)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "recipe": self.recipe,
            "solutionVersionId": self.solution_version,
            "input": self.input_path,
            "output": self.output_path,
            "lines": self.lines,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "linesPerSecond": round(self.lines_per_second, 1),
            "sampleErrors": self.sample_errors,
        }


class LineError(Exception):
    """One input line cannot be answered; the message goes into that line's ``error``."""


@dataclass(frozen=True)
class _Source:
    recipe: str
    version_id: str
    artifact_path: str
    config: Mapping[str, Any]


# --------------------------------------------------------------------------- entry points
def batch_inference(
    store: Store,
    *,
    dataset_group: str,
    input_path: str | Path,
    output_path: str | Path,
    solution_version: str | None = None,
    campaign: str | None = None,
    num_results: int = DEFAULT_NUM_RESULTS,
    filter_name: str | None = None,
    live_history_limit: int = 500,
    on_progress: Progress | None = None,
    workers: int | None = None,
    block_lines: int = BLOCK_LINES,
) -> BatchReport:
    """Recommendations (or re-rankings, or related items) for every line of ``input_path``.

    With ``campaign`` the job answers as that campaign does (its configuration, e.g.
    ``excludeInteracted``); with ``solution_version`` as a campaign with the default configuration.
    ``workers``: processes answering blocks of ``block_lines`` lines when the file holds more than
    one block (None: one per core; 1: all in this process).
    """
    _check_count(num_results, MAX_INFERENCE_RESULTS)
    source = _source(store, dataset_group, solution_version, campaign)
    model = _load(source)
    if model.recipe_type == "USER_SEGMENTATION":
        raise InvalidInput(f"{source.recipe} makes user segments: run batch-segment with this solution version")
    if model.name == "trending-now":
        raise InvalidInput(
            "trending-now has no batch inference (as in Personalize): its list is the same for everyone; "
            "ask its campaign"
        )
    filters = _filters(store, dataset_group, filter_name)
    job = _InferenceJob(
        store, dataset_group, model, num_results, filter_name, filters, source.config, live_history_limit
    )
    spec = _WorkerSpec(store.database_url, dataset_group, source, num_results, filter_name, live_history_limit)
    count = _worker_count(store, workers)
    return _run(
        "batch-inference",
        source,
        input_path,
        output_path,
        job.prepare,
        job.answer,
        on_progress,
        block_lines=block_lines,
        processes=(spec, count) if count > 1 else None,
    )


def batch_segment(
    store: Store,
    *,
    dataset_group: str,
    solution_version: str,
    input_path: str | Path,
    output_path: str | Path,
    num_results: int = DEFAULT_NUM_RESULTS,
    filter_name: str | None = None,
    on_progress: Progress | None = None,
) -> BatchReport:
    """User segments: for each line (an ``itemId``, or ``itemAttributes`` query) the users most
    likely to interact, best first, as ``usersList``.

    ``filter_name`` names a UserID filter (``EXCLUDE UserID WHERE Users.X IN (...)``); its
    $PARAMETERS take their values from each line's ``filterValues``, as Personalize's do.
    """
    _check_count(num_results, MAX_SEGMENT_RESULTS)
    source = _source(store, dataset_group, solution_version, None)
    model = _load(source)
    if model.recipe_type != "USER_SEGMENTATION":
        raise InvalidInput(
            f"{source.recipe} recommends items, it does not make user segments: use an item-affinity or "
            "item-attribute-affinity solution version (or batch-inference)"
        )
    users = None
    if filter_name is not None:
        from engine.serving.filters import FilterService

        users = FilterService(store).user_filter(dataset_group, filter_name, recipe=model.name)
    answer = _segment_answerer(model, num_results, users)
    return _run("batch-segment", source, input_path, output_path, lambda parsed: parsed, answer, on_progress)


# --------------------------------------------------------------------------- set-up
def _check_count(num_results: int, most: int) -> None:
    if not isinstance(num_results, int) or not 1 <= num_results <= most:
        raise InvalidInput(f"numResults must be between 1 and {most}, not {num_results!r}")


def _source(store: Store, dataset_group: str, solution_version: str | None, campaign: str | None) -> _Source:
    if (solution_version is None) == (campaign is None):
        raise InvalidInput("give either a solution version or a campaign")
    if campaign is not None:
        info = store.get_campaign(dataset_group, campaign)
        return _Source(info.recipe, info.solution_version_id, info.artifact_path, info.config)
    version = store.get_solution_version(solution_version)
    if version.dataset_group != dataset_group:
        raise NotFound(f"solution version {solution_version!r} does not exist in {dataset_group!r}")
    if version.status != "ACTIVE" or not version.artifact_path:
        raise InvalidInput(f"solution version {solution_version!r} is {version.status}, not ACTIVE")
    return _Source(version.recipe, version.id, version.artifact_path, {})


def _load(source: _Source) -> Recipe:
    if not Path(source.artifact_path).is_file():
        raise NotFound(f"the model of solution version {source.version_id!r} is missing: {source.artifact_path}")
    return recipe_class(source.recipe).load(source.artifact_path)


def _filters(store: Store, dataset_group: str, filter_name: str | None):
    """The filter service when a filter is named (a missing filter is NotFound here, before any line)."""
    if filter_name is None:
        return None
    from engine.serving.filters import FilterService

    service = FilterService(store)
    target = service.compiled(dataset_group, filter_name).target
    if target != "ItemID":
        raise InvalidInput(f"filter {filter_name!r} filters {target}s; batch inference needs an ItemID filter")
    return service


def _output_file(input_path: Path, output_path: str | Path) -> Path:
    """Personalize writes ``<input file name>.out`` into the output folder (an existing folder, or a
    path ending in a slash); a file path is used as is."""
    folder = Path(output_path)
    if folder.is_dir() or str(output_path).endswith(("/", os.sep)):
        return folder / f"{input_path.name}.out"
    return folder


# --------------------------------------------------------------------------- the loop
Output = dict[str, Any] | str
Prepare = Callable[[list[Any]], Any]
Answer = Callable[[Any], list[Output]]


def _run(
    job: str,
    source: _Source,
    input_path: str | Path,
    output_path: str | Path,
    prepare: Prepare,
    answer: Answer,
    on_progress: Progress | None,
    *,
    block_lines: int = BLOCK_LINES,
    processes: tuple[_WorkerSpec, int] | None = None,
) -> BatchReport:
    """Read, answer and write block by block. With ``processes`` (and more than one block), worker
    processes answer the blocks (:func:`_answer_in_processes`). Otherwise a reader thread reads
    and prepares the next block (parsing, the database reads) while this one answers the current
    block, which is mostly numpy work that runs without the interpreter lock."""
    started = time.perf_counter()
    source_path = Path(input_path)
    if not source_path.is_file():
        raise NotFound(f"input file {source_path} does not exist")
    target = _output_file(source_path, output_path)
    if target.resolve() == source_path.resolve():
        raise InvalidInput("the output file must not be the input file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    report = BatchReport(job, source.recipe, source.version_id, str(source_path), str(target))

    def read_next(blocks: Iterator[list[tuple[str, Any]]]) -> tuple[list[tuple[str, Any]], Any] | None:
        block = next(blocks, None)
        return None if block is None else (block, prepare([parsed for _, parsed in block]))

    try:
        with (
            source_path.open("rb") as src,
            partial.open("w", encoding="utf-8") as out,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-reader") as reader,
        ):
            blocks = _blocks(src, block_lines)
            first = next(blocks, None)
            second = next(blocks, None) if processes is not None and first is not None else None
            if second is not None:
                assert processes is not None and first is not None
                spec, count = processes

                def here(block: list[tuple[str, Any]]) -> tuple[str, int, list[tuple[int, str]]]:
                    return _rendered(block, answer(prepare([parsed for _, parsed in block])))

                _answer_in_processes(chain((first, second), blocks), spec, count, out, report, on_progress, here)
            else:
                blocks = chain([first] if first is not None else [], blocks)
                upcoming = reader.submit(read_next, blocks)
                while (ready := upcoming.result()) is not None:
                    block, prepared = ready
                    upcoming = reader.submit(read_next, blocks)
                    out.write(_render(block, answer(prepared), report))
                    if on_progress is not None:
                        on_progress(len(block))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    report.seconds = time.perf_counter() - started
    return report


def _render(block: list[tuple[str, Any]], outputs: list[Output], report: BatchReport) -> str:
    text, errors, first_errors = _rendered(block, outputs)
    _count(report, len(block), errors, first_errors)
    return text


def _rendered(block: list[tuple[str, Any]], outputs: list[Output]) -> tuple[str, int, list[tuple[int, str]]]:
    """A block's output lines as text, its number of line errors, and its first few (index, error)."""
    lines = []
    errors = 0
    first_errors: list[tuple[int, str]] = []
    for (raw, parsed), result in zip(block, outputs, strict=True):
        if type(result) is tuple:  # _Rendered
            # What json.dumps writes for {"input": ..., "output": ..., "error": None}, spliced.
            lines.append(f'{{"input": {_input_json(raw, parsed)}, "output": {result[0]}, "error": null}}')
            continue
        shown = raw if isinstance(parsed, LineError) else parsed
        if isinstance(result, str):
            errors += 1
            if len(first_errors) < 5:
                first_errors.append((len(lines), result))
            lines.append(_JSON.encode({"input": shown, "error": result}))
        else:
            lines.append(_dump_line(shown, result))
    return "\n".join(lines) + "\n", errors, first_errors


def _count(report: BatchReport, lines: int, errors: int, first_errors: list[tuple[int, str]]) -> None:
    report.errors += errors
    for at, message in first_errors:
        if len(report.sample_errors) < 5:
            report.sample_errors.append(f"line {report.lines + at + 1}: {message}")
    report.lines += lines


def _dump_line(shown: Any, output: dict[str, Any]) -> str:
    return _JSON.encode({"input": shown, "output": output, "error": None})


# --------------------------------------------------------------------------- JSON text, fast
# Output lines are spliced from pieces of JSON text, each exactly what json.dumps(...,
# ensure_ascii=False) writes for that piece (the byte-for-byte format is pinned by the tests):
# json.dumps is most of a line's cost when it walks a dict, two lists and 25 floats per line.

#: json.dumps(obj, ensure_ascii=False) is _JSON.encode(obj), without a new encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False)


#: An answer already written as JSON text (what ``_JSON.encode`` writes for its dict), in a
#: 1-tuple: a plain str is a line's error, a dict an answer still to be written.
_Rendered = tuple[str]


def _input_json(raw: str, parsed: Any) -> str:
    """The echoed input as json.dumps writes it: the parsed object (the raw text for a line that
    did not parse), with a short cut for the usual ``{"userId": "..."}``."""
    if type(parsed) is dict and len(parsed) == 1:
        user = parsed.get("userId")
        if type(user) is str:
            return '{"userId": ' + encode_basestring(user) + "}"
    return _JSON.encode(raw if isinstance(parsed, LineError) else parsed)


def _item_lists(item_ids: list[tuple[str, ...]]) -> list[str]:
    """Each tuple of ids as a JSON list. When no id in the block needs an escape (quote, backslash,
    control character), an id's JSON text is the id in quotes and a list is one join."""
    try:
        texts = ['["' + '", "'.join(ids) + '"]' if ids else "[]" for ids in item_ids]
    except TypeError:  # an id that is not a string
        return [_JSON.encode(list(ids)) for ids in item_ids]
    # json escapes a quote, a backslash and characters below U+0020, and nothing else when it
    # writes non-ASCII as is; in UTF-8 every byte of a longer character is 0x80 or above.
    probe = np.frombuffer("".join(texts).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    quotes = np.count_nonzero(probe == ord('"'))
    if quotes == 2 * sum(map(len, item_ids)) and not ((probe < 0x20) | (probe == ord("\\"))).any():
        return texts
    return [_JSON.encode(list(ids)) for ids in item_ids]


def _score_lists(rounded: np.ndarray, counts: list[int]) -> list[str]:
    """Consecutive runs of ``counts`` scores as JSON lists, NaN as null: what json.dumps writes for
    ``[None if s != s else s for s in run]`` (floats as float.__repr__, infinities as Infinity)."""
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    if bounds[-1] != len(rounded):
        values = rounded.tolist()
        return [_JSON.encode([None if s != s else s for s in values[a:b]]) for a, b in pairwise(bounds.tolist())]
    text, ends, plain = _float_texts(rounded)
    edges = np.zeros(len(rounded) + 1, dtype=np.int64)
    edges[1:] = ends
    starts = edges[bounds[:-1]]
    stops = np.maximum(edges[bounds[1:]] - 2, starts).tolist()  # less the last score's ", " (none: empty)
    starts = starts.tolist()
    lists = ["[" + text[a:b] + "]" for a, b in zip(starts, stops, strict=True)]
    if not plain.all():
        # Runs holding a score _float_texts leaves out: NaN, infinities, |score| < 1e-4 or huge.
        unplain = np.zeros(len(rounded) + 1, dtype=np.int64)
        np.cumsum(~plain, out=unplain[1:])
        values = rounded.tolist()
        for n in np.flatnonzero(unplain[bounds[1:]] > unplain[bounds[:-1]]).tolist():
            run = values[bounds[n] : bounds[n + 1]]
            lists[n] = _JSON.encode([None if s != s else s for s in run])
    return lists


def _float_texts(rounded: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """``repr`` of every value (as json.dumps writes a float) each followed by ", ", all in one
    text; where each value's ", " ends in it; and which values are written so ("plain": the
    others, NaN, infinities, 0 < |x| < 1e-4 and |x| >= 1e7, are left for the caller, their text
    here is meaningless).

    A plain value is the double nearest to k / 10**7 for an integer k with |k| < 10**14 (checked,
    not assumed: ``np.round(x, 7)`` is such a double). That decimal has at most 14 significant
    digits, and two decimals of at most 15 significant digits never read back as the same double,
    so it is the shortest text that reads back as the value: what repr writes, k's digits with the
    point 7 from the right, the fraction's trailing zeros dropped but one, fixed-point since
    |x| >= 1e-4, a minus sign for a negative value or -0.0. The digits are
    looked up in tables of 4-character cells, NUL where a cell writes nothing; the NULs are then
    deleted from the whole text at once."""
    (high, high_len), (low, low_len), (first, first_len), (last, last_len) = _float_tables()
    with np.errstate(invalid="ignore", over="ignore"):
        k = np.rint(rounded * 1e7)
        size = np.abs(k)
        plain = (size < 1e14) & (k / 1e7 == rounded) & ((size >= 1000) | (size == 0))
    size = np.where(plain, size, 0).astype(np.int64)
    whole64 = size // 10_000_000
    fraction = (size - whole64 * 10_000_000).astype(np.int32)
    whole = whole64.astype(np.int32)
    whole_high = whole // 10_000
    whole_low = whole - whole_high * 10_000
    fraction_high = fraction // 10_000
    fraction_low = fraction - fraction_high * 10_000
    at_high = whole_high + 1000 * (np.signbit(rounded) & plain)
    at_low = whole_low + 10_000 * (whole_high > 0)
    at_first = fraction_high + 1000 * (fraction_low > 0)
    cells = np.empty((len(rounded), 5), dtype=np.uint32)
    cells[:, 0] = high[at_high]
    cells[:, 1] = low[at_low]
    cells[:, 2] = first[at_first]
    cells[:, 3] = last[fraction_low]
    cells[:, 4] = _SEPARATOR
    lengths = high_len[at_high] + low_len[at_low] + first_len[at_first] + last_len[fraction_low] + 2
    text = cells.tobytes().translate(None, b"\0").decode("ascii")
    return text, np.cumsum(lengths, dtype=np.int64), plain


#: ", " and two NULs: the cell after each value in _float_texts.
_SEPARATOR = np.frombuffer(b", \0\0", dtype=np.uint32)[0]


@cache
def _float_tables() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """_float_texts' cells (4 characters as one uint32, NUL where nothing is written) and how many
    characters each writes, for: the sign and a whole part's thousands (index: 1000 x negative +
    thousands); its last 4 digits (+ 10,000 when there are thousands, as their zeros then show);
    "." and the first 3 decimals (+ 1000 when a later decimal is not 0, as their trailing zeros
    then show); the last 4 decimals, trailing zeros dropped."""

    def digits(n: int, width: int) -> str:  # n without leading zeros, right-aligned; "" for 0
        return (str(n) if n else "").rjust(width, "\0")

    high = [sign + digits(n, 3) for sign in ("\0", "-") for n in range(1000)]
    low = [digits(n, 4) if n else "0".rjust(4, "\0") for n in range(10_000)] + [f"{n:04d}" for n in range(10_000)]
    first = [f".{n:03d}".rstrip("0").ljust(4, "\0") if n else ".0\0\0" for n in range(1000)]
    first += [f".{n:03d}" for n in range(1000)]
    last = [f"{n:04d}".rstrip("0").ljust(4, "\0") for n in range(10_000)]

    def table(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
        data = "".join(cells).encode("ascii")
        assert len(data) == 4 * len(cells)
        return np.frombuffer(data, dtype=np.uint32), np.array([4 - c.count("\0") for c in cells], dtype=np.int32)

    return table(high), table(low), table(first), table(last)


def _blocks(src, block_lines: int = BLOCK_LINES) -> Iterator[list[tuple[str, Any]]]:
    """Non-blank lines in blocks: (the raw text, the parsed object or a LineError)."""
    block: list[tuple[str, Any]] = []
    for number, raw_bytes in enumerate(src):
        if not raw_bytes.strip():
            continue
        try:
            # A byte-order mark may open the file (editors on Windows write one).
            raw = raw_bytes.decode("utf-8-sig" if number == 0 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            block.append((raw_bytes.decode("utf-8", "replace").rstrip("\r\n"), LineError(f"not UTF-8 text: {exc}")))
        else:
            block.append((raw, _parse(raw)))
        if len(block) >= block_lines:
            yield block
            block = []
    if block:
        yield block


def _parse(raw: str) -> Any:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return LineError(f"not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(obj, dict):
        return LineError("a line must be a JSON object")
    return obj


def _string_field(obj: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise LineError(f"the line needs {key!r}")
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise LineError(f"{key} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise LineError(f"unknown field {unknown[0]!r}; this job reads {', '.join(allowed)}")


def _string_map(obj: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LineError(f"{key} must be an object of string values")
    return value


# --------------------------------------------------------------------------- worker processes
@dataclass(frozen=True)
class _WorkerSpec:
    """What a worker process needs to answer blocks as this job does (it opens its own store)."""

    database_url: str
    dataset_group: str
    source: _Source
    num_results: int
    filter_name: str | None
    live_history_limit: int


def _worker_count(store: Store, workers: int | None) -> int:
    if in_memory(store.database_url):
        return 1  # another process would see another, empty database
    if workers is not None:
        return max(1, workers)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _answer_in_processes(
    blocks: Iterator[list[tuple[str, Any]]],
    spec: _WorkerSpec,
    count: int,
    out,
    report: BatchReport,
    on_progress: Progress | None,
    here: Callable[[list[tuple[str, Any]]], tuple[str, int, list[tuple[int, str]]]],
) -> None:
    """Blocks answered by ``count - 1`` worker processes and this one, written in input order.

    Each worker keeps two blocks in hand; every other block is answered here, by the process
    that has the model loaded already: it starts at once, while the workers are still starting
    (about a second each: imports and the model), and one import fewer competes for the cores.
    Workers are spawned rather than forked: a forked copy of a process with threads (a server,
    BLAS) may inherit a lock some thread held."""
    from engine.recipes import up_batch

    workers = count - 1
    pending: deque[tuple[int, Future | tuple[str, int, list[tuple[int, str]]]]] = deque()
    in_flight = 0

    def write_oldest() -> None:
        nonlocal in_flight
        size, answered = pending.popleft()
        if isinstance(answered, Future):
            in_flight -= 1
            answered = answered.result()
        text, errors, first_errors = answered
        out.write(text)
        _count(report, size, errors, first_errors)
        if on_progress is not None:
            on_progress(size)

    def oldest_ready() -> bool:
        return bool(pending) and (not isinstance(pending[0][1], Future) or pending[0][1].done())

    context = multiprocessing.get_context("spawn")
    threads = up_batch.THREADS
    # The workers have the other cores: blocks answered here run on one thread too.
    up_batch.THREADS = 1
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(spec,)) as pool:
            try:
                for block in blocks:
                    if in_flight < 2 * workers:
                        pending.append((len(block), pool.submit(_answer_block, block)))
                        in_flight += 1
                    else:
                        pending.append((len(block), here(block)))
                    while oldest_ready() or len(pending) > 4 * count:
                        write_oldest()
                while pending:
                    write_oldest()
            except BaseException:
                for _, answered in pending:
                    if isinstance(answered, Future):
                        answered.cancel()
                raise
    finally:
        up_batch.THREADS = threads


_worker_job: _InferenceJob | None = None


def _start_worker(spec: _WorkerSpec) -> None:
    """A worker process's set-up: its own store connection, the model, the job."""
    global _worker_job
    from engine.recipes import up_batch

    # One process per core already: a worker's blocks need no threads of their own.
    up_batch.THREADS = 1
    store = Store(spec.database_url, create=False)
    _worker_job = _InferenceJob(
        store,
        spec.dataset_group,
        _load(spec.source),
        spec.num_results,
        spec.filter_name,
        _filters(store, spec.dataset_group, spec.filter_name),
        spec.source.config,
        spec.live_history_limit,
    )


def _answer_block(block: list[tuple[str, Any]]) -> tuple[str, int, list[tuple[int, str]]]:
    job = _worker_job
    assert job is not None, "a worker answers only after _start_worker"
    return _rendered(block, job.answer(job.prepare([parsed for _, parsed in block])))


# --------------------------------------------------------------------------- inference
_INFERENCE_KEYS = {
    "USER_PERSONALIZATION": ("userId", "filterValues", "context"),
    "PERSONALIZED_RANKING": ("userId", "itemList", "filterValues", "context"),
    "RELATED_ITEMS": ("itemId", "userId", "filterValues"),
    "POPULAR_ITEMS": ("userId", "filterValues"),
}


@dataclass
class _Prepared:
    size: int
    errors: dict[int, str]
    positions: list[int]
    events: UserEvents
    queries: list[BatchQuery]


class _InferenceJob:
    def __init__(
        self,
        store: Store,
        dataset_group: str,
        model: Recipe,
        num_results: int,
        filter_name: str | None,
        filters,
        config: Mapping[str, Any],
        live_history_limit: int,
    ) -> None:
        self.store = store
        self.dataset_group = dataset_group
        self.model = model
        self.num_results = num_results
        self.filter_name = filter_name
        self.filters = filters
        # Absent: the recipe decides (Recipe.default_exclusions); true: all history; false: none.
        self.exclude_interacted = config.get("excludeInteracted")
        self.live_history_limit = live_history_limit
        self.keys = _INFERENCE_KEYS[model.recipe_type]
        self.scored = model.recipe_type in ("USER_PERSONALIZATION", "PERSONALIZED_RANKING")

    def prepare(self, parsed: list[Any]) -> _Prepared:
        """The reader thread's share: validate the lines, decide filters, read the users' events."""
        errors: dict[int, str] = {}
        pending: list[tuple[int, Query]] = []
        for n, obj in enumerate(parsed):
            try:
                if isinstance(obj, LineError):
                    raise obj
                pending.append((n, self._query(obj)))
            except (LineError, ShelfwiseError) as exc:
                errors[n] = _message(exc)
        users = list(dict.fromkeys(q.user_id for _, q in pending if q.user_id))
        events = as_user_events(
            latest_events_of_users(self.store, self.dataset_group, users, limit=self.live_history_limit), users
        )
        row_of = {u: k for k, u in enumerate(users)}
        # Exclusions only for a user's own list (no itemList): the recipe's default ones when the
        # campaign config does not set excludeInteracted, all history when it is true.
        default, everything = self.exclude_interacted is None, bool(self.exclude_interacted)
        batch = []
        for _, q in pending:
            user = q.user_id
            own = q.candidates is None and user is not None
            batch.append(BatchQuery(q, row_of.get(user) if user else None, default and own, everything and own))
        return _Prepared(len(parsed), errors, [n for n, _ in pending], events, batch)

    def answer(self, prepared: _Prepared) -> list[Output | _Rendered]:
        """Each line's answer as JSON text for :func:`_rendered`, or its error."""
        results: list[Output | _Rendered] = [""] * prepared.size
        for n, message in prepared.errors.items():
            results[n] = message
        answers = recommend_many(self.model, prepared.events, prepared.queries)
        for n, output in zip(prepared.positions, self._outputs(answers), strict=True):
            results[n] = output
        return results

    def _outputs(self, answers: list) -> list[_Rendered]:
        """Each answer's ``{"recommendedItems": [...], "scores": [...]}`` as JSON text (NaN scores null)."""
        items = _item_lists([r.item_ids for r in answers])
        if not self.scored:
            return [(f'{{"recommendedItems": {i}}}',) for i in items]
        # Scores are rounded to 7 decimals like a campaign's, for the whole block at once.
        flat = np.fromiter(chain.from_iterable(r.scores for r in answers), dtype=np.float64)
        scores = _score_lists(np.round(flat, 7), [len(r) for r in answers])
        return [(f'{{"recommendedItems": {i}, "scores": {s}}}',) for i, s in zip(items, scores, strict=True)]

    def _query(self, obj: Mapping[str, Any]) -> Query:
        kind = self.model.recipe_type
        _check_keys(obj, self.keys)
        user_id = _string_field(obj, "userId", required=kind in ("USER_PERSONALIZATION", "PERSONALIZED_RANKING"))
        item_id = _string_field(obj, "itemId", required=kind == "RELATED_ITEMS")
        candidates = None
        if kind == "PERSONALIZED_RANKING":
            items = obj.get("itemList")
            if not isinstance(items, list) or not items:
                raise LineError("the line needs 'itemList', a non-empty list of item ids")
            if len(items) > MAX_ITEM_LIST:
                raise LineError(f"itemList holds {len(items)} items; at most {MAX_ITEM_LIST}")
            if not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in items):
                raise LineError("itemList must hold item ids (non-empty strings)")
            candidates = tuple(items)
        filter_values = _string_map(obj, "filterValues")
        context = _string_map(obj, "context") or {}
        exclude: set[str] = {item_id} if item_id else set()
        if self.filters is not None:
            decision = self.filters.decide(
                self.dataset_group, self.filter_name, filter_values, user_id=user_id, item_id=item_id
            )
            if candidates is not None:
                candidates = tuple(c for c in candidates if decision.allows(c))
            elif decision.restricts:
                exclude.update(decision.excluded_from(self.model.item_ids))
        elif filter_values:
            raise LineError("filterValues were given, but the job has no filter")
        return Query(
            user_id=user_id,
            item_id=item_id,
            num_results=len(candidates) if candidates is not None else self.num_results,
            exclude=frozenset(exclude),
            candidates=candidates,
            context=context,
        )


def as_user_events(cols: EventColumns, users: list[str]) -> UserEvents:
    """Columns read by :func:`latest_events_of_users` (grouped in ``users`` order) as one row per user."""
    if not users:
        return UserEvents.empty()
    offsets = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols.rows_of(users), minlength=len(users)), out=offsets[1:])
    return UserEvents(offsets, cols.item_ids, cols.event_types, cols.event_values, cols.timestamps)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, ShelfwiseError) else str(exc)


# --------------------------------------------------------------------------- segments
def _segment_answerer(model: Recipe, num_results: int, users: UserFilter | None = None) -> Answer:
    by_attributes = hasattr(model, "segment_for_attributes")
    key = "itemAttributes" if by_attributes else "itemId"
    keys = (key, "filterValues")

    @cache
    def position() -> dict[str, int]:
        return {u: k for k, u in enumerate(model.user_ids.tolist())}

    def segment(obj: Mapping[str, Any], n: int) -> Ranked:
        if by_attributes:
            expression = obj.get(key)
            if not isinstance(expression, str) or not expression.strip():
                raise LineError(f'the line needs {key!r}, a query like ITEMS.CATEGORY = "shoes"')
            return model.segment_for_attributes(expression, n)
        item_id = _string_field(obj, key, required=True)
        return model.recommend_users([item_id], n)

    def answer(parsed: list[Any]) -> list[dict[str, Any] | str]:
        out: list[dict[str, Any] | str] = []
        for obj in parsed:
            try:
                if isinstance(obj, LineError):
                    raise obj
                _check_keys(obj, keys)
                if users is None:
                    if obj.get("filterValues") is not None:
                        raise LineError("filterValues were given, but the job has no filter")
                    ranked = segment(obj, num_results)
                else:
                    allowed = users.allowed(model.user_ids, _string_map(obj, "filterValues"))
                    # Ask for as many more as the filter rules out: the top num_results it keeps
                    # are then among them, whatever the scores.
                    ranked = segment(obj, num_results + int((~allowed).sum()))
                    at = position()
                    ranked = Ranked(tuple(u for u in ranked.item_ids if allowed[at[u]])[:num_results], ())
                out.append({"usersList": list(ranked.item_ids)})
            except (LineError, ShelfwiseError) as exc:
                out.append(_message(exc))
        return out

    return answer
