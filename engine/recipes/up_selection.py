"""Fit-time model selection for user-personalization: family and settings chosen on held-out users.

:class:`~engine.recipes.user_personalization.UserPersonalization` picks its model family (ALS or
EASE), how fast a shopper's older items fade, how much "what comes next" counts and how much the
request's context shifts scores by NDCG@10 of the list a campaign would return, on users the
candidate models never saw; and it measures how often each rank's new suggestion is taken (the
rank calibration that merges new and already-seen items).

Two ways to get models that never saw the held-out users' answers:

* small data (under :data:`SHARED_FIT_EVENTS` events): probe models are fitted without the
  held-out users at all, and the final model is fitted again on everything (a second fit is cheap
  there, and exact);
* large data: one fit on everything except what the held-out users did last (their newest 10%,
  the answers being predicted; at most 500 users, well under 1% of the events) serves both as the
  probe and as the final model, so training costs one fit, not two.

Scoring every held-out user for every setting over the whole catalog is the other cost. Taste is
computed for a block of users at once (stacked ALS user steps, one matrix product), and for each
setting only a few candidates per user are blended: the items "what comes next" or the context
reach, items with no interactions, and the best of the rest by taste alone, for whom the blended
score is a monotone function of taste (so their best by taste are their best by score). With ALS
on a large catalog not even the taste product is whole: items are scored in descending order of
their factors' norm until the norm bound stops each user (:mod:`engine.recipes.up_selection_pruned`).
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from engine.recipes.als_batch import grouped_top, on_columns, solve_users
from engine.recipes.attribute_popularity import AttributePopularity
from engine.recipes.base import TrainingData
from engine.recipes.feature_space import Features, resolved
from engine.recipes.repeats import RankCalibration, RepeatModel
from engine.recipes.sequences import events_by_user, rows_by_user
from engine.recipes.up_selection_pruned import BlockTaste, NormOrder, block_taste, exact
from engine.recipes.validation import (
    INPUT_SHARE,
    Case,
    holdout,
    interactions,
    request_context,
    validation_users,
)

if TYPE_CHECKING:
    from engine.recipes.user_personalization import UserPersonalization

FAMILIES = ("als", "ease")
#: Settings tried on the held-out users when not fixed by hyperparameters.
HALF_LIVES: tuple[float | None, ...] = (3.0, 10.0, 30.0, None)
SEQUENCE_WEIGHTS = (0.0, 0.25, 0.5, 0.75)
CONTEXT_WEIGHTS = (0.0, 0.1, 0.3, 1.0)
#: Ranks of new suggestions whose hit rate is measured at fit time.
CALIBRATED_RANKS = 50
MIN_VALIDATION_USERS = 10
MAX_VALIDATION_USERS = 500
#: Taste-matrix elements (float32) per block of held-out users (about 16 MB; each scoring thread
#: holds several arrays of this size at once).
_BLOCK_ELEMENTS = 4_000_000
#: Items are dealt into groups of this many to find each user's best by taste.
_GROUP = 32
#: Threads scoring blocks of held-out users (numpy releases the interpreter lock in the heavy parts).
_THREADS = 4
#: From this many events on, one fit serves as the probe and the final model (see the docstring).
SHARED_FIT_EVENTS = 200_000


@dataclass(frozen=True)
class Choice:
    """What the held-out users chose (or the hyperparameters fixed)."""

    family: str
    half_life: float | None
    sequence_weight: float
    validation_ndcg: float | None = None
    #: How much the request's context (device, location...) shifts the scores.
    context_weight: float = 0.0


@dataclass(frozen=True)
class Selection:
    choice: Choice
    calibration: RankCalibration
    #: True when ``model`` was left fitted (on everything but the held-out users' answers).
    fitted: bool = False


def select(model: UserPersonalization, data: TrainingData, features: Features) -> Selection:
    """Choose family and settings for ``model`` on held-out users of ``data``; on large data the
    model is left fitted as a side effect (``Selection.fitted``)."""
    hp = model.hyperparameters
    families = FAMILIES if hp["model"] == "auto" else (hp["model"],)
    touched = np.count_nonzero(np.bincount(data.item_index, minlength=data.n_items))
    if hp["model"] == "auto" and touched > hp["ease_max_items"] * 4:
        families = ("als",)  # EASE would model too small a share of this catalog
    half_lives = (hp["history_half_life"],) if hp["history_half_life"] is not None else HALF_LIVES
    mixes = (hp["sequence_weight"],) if hp["sequence_weight"] is not None else SEQUENCE_WEIGHTS
    held_out = validation_users(
        data, share=hp["validation_share"], max_users=MAX_VALIDATION_USERS, seed=hp["random_state"]
    )
    if len(held_out) < MIN_VALIDATION_USERS:
        # Too few users to learn from: the settings that did best in the benchmarks.
        h = hp["history_half_life"] if hp["history_half_life"] is not None else 10.0
        m = hp["sequence_weight"] if hp["sequence_weight"] is not None else 0.5
        return Selection(Choice(families[0], h, m), RankCalibration())
    if len(data) >= SHARED_FIT_EVENTS:
        return _select_shared(model, data, features, held_out, families, half_lives, mixes)
    train, cases = holdout(data, held_out)
    repeats = RepeatModel.fit(train, seed=hp["random_state"]) if hp["learn_repeats"] else RepeatModel()
    attributes = AttributePopularity().fit(train, lambda: model._weights(train))
    # The held-out users' own items may drop out of the vocabulary; the catalog's do not.
    train_features = resolved(features)[np.searchsorted(data.item_ids, train.item_ids)]
    best: tuple[float, Choice, RankCalibration] | None = None
    for family in families:
        probe = type(model)(**hp)
        probe._fit_core(train, family, features=train_features, need_als=family == "als")
        probe.repeats, probe.attributes = repeats, attributes
        for choice, calibration, ndcg in _scored(probe, cases, family, half_lives, mixes):
            if best is None or ndcg > best[0] + 1e-12:
                best = (ndcg, choice, calibration)
    assert best is not None
    return Selection(best[1], best[2])


def _select_shared(
    model: UserPersonalization,
    data: TrainingData,
    features: Features,
    held_out: np.ndarray,
    families: Sequence[str],
    half_lives: Sequence[float | None],
    mixes: Sequence[float],
) -> Selection:
    """One fit without the held-out users' answers: it is the probe, then the final model."""
    hp = model.hyperparameters
    train, cases = holdout_answers(data, held_out)

    def beside() -> tuple[RepeatModel, AttributePopularity]:
        repeats = RepeatModel.fit(train, seed=hp["random_state"]) if hp["learn_repeats"] else RepeatModel()
        return repeats, AttributePopularity().fit(train, lambda: model._weights(train))

    # One core holds every family asked for (the ALS factors are kept whichever wins); the repeat
    # and attribute models are learnt while ALS fits.
    model.repeats, model.attributes = model._fit_core(
        train, "ease" if "ease" in families else "als", features=features, need_als=True, beside=beside
    )
    best: tuple[float, Choice, RankCalibration] | None = None
    for family in families:
        for choice, calibration, ndcg in _scored(model, cases, family, half_lives, mixes):
            if best is None or ndcg > best[0] + 1e-12:
                best = (ndcg, choice, calibration)
    assert best is not None
    if best[1].family != "ease":
        model.ease_items, model.ease_weights = np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    return Selection(best[1], best[2], fitted=True)


def _scored(
    probe: UserPersonalization,
    cases: Sequence[Case],
    family: str,
    half_lives: Sequence[float | None],
    mixes: Sequence[float],
) -> list[tuple[Choice, RankCalibration, float]]:
    """:func:`score_settings` with BLAS single-threaded, as around the ALS fit: the scoring is
    many small products and stacked solves, where OpenBLAS's own threads cost more than they
    give (scoring the 1M benchmark's held-out users took twice as long with them on 2 cores)."""
    with threadpool_limits(1, "blas"):
        return list(score_settings(probe, cases, family, half_lives, mixes))


def holdout_answers(data: TrainingData, test_users: np.ndarray, *, history_limit: int = 500):
    """Like :func:`engine.recipes.validation.holdout`, but the test users' oldest 90% stay in the
    training data (same vocabularies, no copy of the catalog): only their answers are removed."""
    order, offsets = events_by_user(data)
    drop = np.zeros(len(data), dtype=bool)
    cases = []
    for u in np.asarray(test_users).tolist():
        events = order[offsets[u] : offsets[u + 1]]
        n_input = math.floor(INPUT_SHARE * len(events))
        given, later = events[:n_input], events[n_input:]
        drop[later] = True
        given = given[max(0, len(given) - history_limit) :]
        truth = frozenset(data.item_ids[data.item_index[later]].tolist())
        context = request_context(data, int(later[0])) if len(later) else {}
        cases.append(Case(str(data.user_ids[u]), interactions(data, given), truth, context))
    # The split is only fitted on: no interaction or session ids (20 bytes an event at 25 million).
    return rows_by_user(data, ~drop), cases


# --------------------------------------------------------------------- scoring the settings
def score_settings(
    probe: UserPersonalization,
    cases: Sequence[Case],
    family: str,
    half_lives: Sequence[float | None],
    mixes: Sequence[float],
) -> Iterator[tuple[Choice, RankCalibration, float]]:
    """Yield (choice, calibration, NDCG@10 of the merged list) for every setting.

    Per setting, each held-out user's top :data:`CALIBRATED_RANKS` new suggestions are what
    ``recommend`` would rank them (the blend of :meth:`UserPersonalization._blend`, their own
    items and items nobody interacted with and no metadata places left out); their hits give the
    setting's calibration, and the merged top 10 its NDCG.
    """
    usable = [c for c in cases if probe._known(c.history)]
    has_context = probe.attributes.has_context and any(c.context for c in usable)
    context_weights = CONTEXT_WEIGHTS if has_context else (0.0,)
    settings = [(h, m, g) for h in half_lives for m in mixes for g in context_weights]
    if not usable:
        for h, m, g in settings:
            yield Choice(family, h, m, 0.0, g), RankCalibration(), 0.0
        return
    seen = [probe._seen(c.history) for c in usable]
    tops = {k: np.zeros((len(usable), CALIBRATED_RANKS), dtype=np.int64) for k in settings}
    valid = {k: np.zeros((len(usable), CALIBRATED_RANKS), dtype=bool) for k in settings}
    scorer = _Scorer(probe, family, usable, [s[0] for s in seen], has_context, mixes, context_weights)
    blocks = list(scorer.blocks())
    threads = max(1, min(_THREADS, os.cpu_count() or 1, len(blocks)))
    with ThreadPoolExecutor(threads, thread_name_prefix="up-select") as pool:
        # The inputs are shared by every block (one stacked solve per half-life); each thread then
        # scores whole blocks with its own copy of the scorer (the per-block state is the copy's).
        solved = [pool.submit(scorer.inputs, h) for h in half_lives]
        scorer.prepare()  # meanwhile (the factors only)
        for done in solved:
            done.result()
        pending = iter(blocks)
        lock = threading.Lock()

        def score_blocks() -> None:
            own = copy.copy(scorer)
            while True:
                with lock:
                    lo, hi = next(pending, (None, None))
                if lo is None:
                    return
                own.block(lo, hi)
                own.tastes(half_lives)
                for h in half_lives:
                    own.taste(h)
                    for key in (k for k in settings if k[0] == h):
                        top, ok = own.top(key[1], key[2])
                        tops[key][lo:hi, : top.shape[1]] = top
                        valid[key][lo:hi, : top.shape[1]] = ok

        workers = [pool.submit(score_blocks) for _ in range(threads)]
        outcomes = _Outcomes(probe, usable, seen)  # meanwhile
        for done in workers:
            done.result()

        def outcome(key: tuple) -> tuple[RankCalibration, float]:
            calibration = RankCalibration.from_hits(outcomes.hits(tops[key], valid[key]))
            return calibration, outcomes.ndcg(tops[key], valid[key], calibration)

        # Each setting's own arrays: the same numbers whichever thread works them out.
        measured = list(pool.map(outcome, settings))
    for key, (calibration, ndcg) in zip(settings, measured, strict=True):
        yield Choice(family, key[0], key[1], ndcg, key[2]), calibration, ndcg


class _Outcomes:
    """Hits and NDCG@10 of every held-out user's merged list, all users at once. The same
    numbers as asking :func:`engine.recipes.repeats.merge` and :func:`ndcg_at_10` user by user
    (the same sort keys, the same summation order), without a Python loop per user and setting."""

    def __init__(self, probe: UserPersonalization, cases: Sequence[Case], seen: Sequence[tuple]) -> None:
        n = len(probe.item_ids)
        count = len(cases)
        truth = [probe.indices(c.truth) for c in cases]
        self.truth_keys = np.unique(
            np.concatenate([r * n + t for r, t in enumerate(truth)] + [np.empty(0, dtype=np.int64)])
        )
        self.n = n
        self.ideal = np.array(
            [sum(1.0 / math.log2(p + 2) for p in range(min(len(c.truth), 10))) for c in cases], dtype=np.float64
        )
        self.discount = np.array([1.0 / math.log2(p + 2) for p in range(10)], dtype=np.float64)
        width = max((len(items) for items, _ in seen), default=0)
        self.seen_items = np.zeros((count, width), dtype=np.int64)
        self.seen_p = np.full((count, width), -np.inf)
        for r, (items, p) in enumerate(seen):
            self.seen_items[r, : len(items)] = items
            self.seen_p[r, : len(items)] = p
        self.rows = np.arange(count)[:, None]

    def hits(self, tops: np.ndarray, valid: np.ndarray) -> np.ndarray:
        found = np.isin(self.rows * self.n + tops, self.truth_keys) & valid
        return found.astype(np.float64)

    def ndcg(self, tops: np.ndarray, valid: np.ndarray, calibration: RankCalibration) -> float:
        """Mean NDCG@10 of the merged lists: new items (valid ones are a prefix of each row) at
        their rank's calibrated chance, seen items at theirs; ties go to new items, then to the
        earlier one (the order :func:`engine.recipes.repeats.merge` sorts by)."""
        k = tops.shape[1]
        new_p = np.where(valid, calibration(np.arange(k))[None, :], -np.inf)
        scores = np.concatenate([new_p, self.seen_p], axis=1)
        items = np.concatenate([tops, self.seen_items], axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        ranked = np.take_along_axis(items, order, axis=1)
        real = np.isfinite(np.take_along_axis(scores, order, axis=1))
        hit = real & np.isin(self.rows * self.n + ranked, self.truth_keys)
        # Summed position by position, as ndcg_at_10 adds them up.
        dcg = np.cumsum(np.where(hit, self.discount[: hit.shape[1]], 0.0), axis=1)[:, -1] if hit.shape[1] else 0.0
        per_user = np.where(self.ideal > 0, dcg / np.where(self.ideal > 0, self.ideal, 1.0), 0.0)
        return float(np.mean(per_user))


class _Scorer:
    """The held-out users' scores a block at a time: taste per half-life, then per (mix, context
    weight) the top new items among a few candidates per user (see the module docstring).

    Candidates per user are their best :data:`CALIBRATED_RANKS` by taste alone plus the "extras"
    (items whose blended score is not a monotone function of taste). On large catalogs the extras
    run to thousands per user (everything the transitions reach), nearly all far below the best
    by taste: once per half-life, extras that no setting being scored could lift to the k-th best
    taste score are set aside (each score is linear in the mix and the context weight, so the
    corners of the settings' box bound it). The top k of what is left is then the top k of all,
    and where scores tie within it (which way ties fall depends on the whole candidate row) that
    user's row is ranked over every candidate exactly as before (:meth:`_full_rows`).

    On the pruned path (ALS, large catalogs) the k-th best taste counts the extras whose score is
    never below their scaled taste too (a higher bar, so users stop sooner), the best by taste are
    only the plain items from that bar on (none below it can reach a list), and extras the scan
    never reached are set aside by their bound or scored one by one (``e_unknown``).
    """

    #: Extras within this much of the k-th best taste score are always kept (float32 rounding).
    _MARGIN = 1e-3

    def __init__(
        self,
        probe: UserPersonalization,
        family: str,
        cases: Sequence[Case],
        seen: Sequence[np.ndarray],
        has_context: bool,
        mixes: Sequence[float] = (0.0,),
        context_weights: Sequence[float] = (0.0,),
    ) -> None:
        self.probe, self.family, self.has_context = probe, family, has_context
        self.mix_range = (float(min(mixes)), float(max(mixes)))
        self.weight_range = (float(min(context_weights)), float(max(context_weights)))
        self.n_items = n = len(probe.item_ids)
        self.seen = [np.unique(s).astype(np.int64) for s in seen]
        self.history = [probe._history_weights(c.history) for c in cases]
        self.contexts = [c.context for c in cases]
        self.cold = np.flatnonzero(probe.popularity <= 0)
        hp = probe.hyperparameters
        self.cold_weight = hp["cold_item_weight"]
        self.borrow = bool(probe.cold_neighbours.nnz) and hp["cold_item_weight"] > 0 and len(self.cold) > 0
        self.cold_row = np.full(n, -1, dtype=np.int64)
        self.cold_row[self.cold] = np.arange(len(self.cold))
        if self.borrow:
            of_cold = probe.cold_neighbours[self.cold].tocsr()
            self.neighbours = np.unique(of_cold.indices)
            local = np.full(n, -1, dtype=np.int64)
            local[self.neighbours] = np.arange(len(self.neighbours))
            self.neighbours_of_cold = sp.csr_matrix(
                (of_cold.data, local[of_cold.indices], of_cold.indptr), shape=(len(self.cold), len(self.neighbours))
            )
        if has_context:
            self.lift_column = np.full(n, -1, dtype=np.int64)
            self.lift_column[probe.attributes.items] = np.arange(len(probe.attributes.items))
        # "What comes next" for every user, sparse (users × items).
        window = hp["sequence_window"]
        from engine.recipes.user_personalization import SEED_DECAY

        rows, cols, vals = [], [], []
        for r, (items, _) in enumerate(self.history):
            if len(items) == 0:
                continue
            seeds, decay = items[:window], np.power(SEED_DECAY, np.arange(min(len(items), window)))
            if probe.cold_neighbours.nnz and (probe.popularity[seeds] <= 0).any():
                x = probe._input_vector(seeds, decay)  # cold seeds count for their neighbours
                seeds = np.flatnonzero(x)
                decay = x[seeds]
            # Otherwise the seeds are distinct known items with positive weights: _input_vector's
            # non-zeros, without a catalog-sized vector per user.
            rows.append(np.full(len(seeds), r))
            cols.append(seeds)
            vals.append(decay)
        # The seeds only: each block follows its users' transitions itself (in the scoring threads).
        self.seeds = _csr(rows, cols, vals, (len(self.history), n))
        self._input_cache: dict = {}
        self._padded_factors: np.ndarray | None = None
        #: ALS on a large catalog: items in norm order, scored until the bound stops each user
        #: (:mod:`engine.recipes.up_selection_pruned`); None: every item is scored.
        self._order: NormOrder | None = None
        self._raw: np.ndarray | None = None
        self._uncounted: np.ndarray | None = None
        self.e_unknown: np.ndarray | None = None

    def prepare(self) -> None:
        """Build what blocks share before copies of this scorer are handed to threads."""
        if self.family != "als":
            return
        # A mix of 1 scales taste to nothing: ``top`` keeps every extra then, and no bound helps
        # (and the bound's reasoning takes mixes and context weights from 0 up).
        if self.mix_range[0] >= 0.0 and self.mix_range[1] < 1.0 and self.weight_range[0] >= 0.0:
            self._order = NormOrder.build(self.probe.item_factors)
        if self._order is None:
            self._padded()
            return
        # Items with no interactions count only above 0, or never where they borrow their scores.
        in_order = self.probe.popularity[self._order.order] <= 0
        self._cold_in_order = in_order if in_order.any() else None
        self._cold_floor = np.inf if self.borrow else 0.0
        self._norm_of_item = self._order.norms[self._order.position].astype(np.float32)
        if self.borrow:
            self._near_factors = np.ascontiguousarray(self.probe.item_factors[self.neighbours], dtype=np.float32)

    def _padded(self) -> np.ndarray:
        """The item factors padded with zero rows to whole groups: padding columns score 0."""
        if self._padded_factors is None:
            n, groups = self.n_items, -(-self.n_items // _GROUP)
            padded = np.zeros((groups * _GROUP, self.probe.item_factors.shape[1]), dtype=np.float32)
            padded[:n] = self.probe.item_factors
            self._padded_factors = padded
        return self._padded_factors

    def _sequence(self, lo: int, hi: int) -> sp.csr_matrix:
        """Users ``lo:hi``'s "what comes next" (users × items, sorted indices)."""
        seeds, transitions = self.seeds[lo:hi], self.probe.transitions
        if not transitions.nnz:
            return sp.csr_matrix(seeds.shape)
        # Only the transitions' rows some seed reaches, in float64 (a float64 copy of the whole
        # matrix cost 12 bytes a transition: most of a gigabyte at 25 million events). The seeds'
        # columns are renumbered in the same order, so each sum adds the same products in turn
        # (a user's row is the same whichever users share the block).
        reached = np.unique(seeds.indices)
        # Through CSC and back: two counting sorts leave the indices sorted, faster than sorting them.
        return (on_columns(seeds, reached) @ transitions[reached].astype(np.float64)).tocsc().tocsr()

    def blocks(self) -> Iterator[tuple[int, int]]:
        size = max(1, _BLOCK_ELEMENTS // max(self.n_items, 1))
        for lo in range(0, len(self.history), size):
            yield lo, min(lo + size, len(self.history))

    # ----------------------------------------------------------------- per block
    def block(self, lo: int, hi: int) -> None:
        """What does not depend on the setting: "what comes next", the context lift, and which
        items each user's blend may lift above their taste order (the extras)."""
        probe, n = self.probe, self.n_items
        count = hi - lo
        self.lo, self.hi = lo, hi
        self._stacked: dict = {}
        # "What comes next", kept sparse: each row divided by its largest value, as _unit does.
        sequence = self._sequence(lo, hi)
        seq_rows = np.repeat(np.arange(count), np.diff(sequence.indptr))
        seq_values = sequence.data.astype(np.float32)
        nonzero = seq_values != 0
        seq_rows, seq_items, seq_values = seq_rows[nonzero], sequence.indices[nonzero], seq_values[nonzero]
        top = np.zeros(count, dtype=np.float32)
        if len(seq_rows):  # the rows are sorted: each one's largest in one pass
            heads = np.flatnonzero(np.append(True, seq_rows[1:] != seq_rows[:-1]))
            top[seq_rows[heads]] = np.maximum.reduceat(np.abs(seq_values), heads)
        self.sequence_top = np.where(top > 0, top, 1.0).astype(np.float32)
        unit_values = seq_values / self.sequence_top[seq_rows]
        self.lift = np.zeros((count, len(probe.attributes.items) if self.has_context else 0), dtype=np.float32)
        if self.has_context:
            for k, r in enumerate(range(lo, hi)):
                if (row := probe.attributes.context_lift(self.contexts[r])) is not None:
                    self.lift[k] = row
        # Items whose blended score is not a monotone function of taste: what the transitions or
        # the context reach, and items with no interactions when they borrow from neighbours; as
        # sorted (user, item) keys, built per user (a users × catalog matrix cost more than this).
        self.seen_rows = np.concatenate([np.full(len(self.seen[r]), k) for k, r in enumerate(range(lo, hi))])
        self.seen_items = np.concatenate([self.seen[r] for r in range(lo, hi)])
        row_keys = np.arange(count, dtype=np.int64)[:, None] * n
        parts = [self.seen_rows.astype(np.int64) * n + self.seen_items, seq_rows.astype(np.int64) * n + seq_items]
        if self.has_context:
            parts.append((row_keys + probe.attributes.items[None, :]).ravel())
        if self.borrow:
            parts.append((row_keys + self.cold[None, :]).ravel())
        # Each part is sorted already: a stable sort (timsort) merges the runs, and a key's first
        # place says where it came from: the user's own items (no extra), then "what comes next".
        keys = np.concatenate(parts)
        source = np.argsort(keys, kind="stable")
        keys = keys[source]
        first = np.append(True, keys[1:] != keys[:-1]) if len(keys) else np.zeros(0, dtype=bool)
        n_seen, n_seq = len(parts[0]), len(parts[1])
        keep = first & (source >= n_seen)
        keys, source = keys[keep], source[keep] - n_seen
        rows_e, items_e = np.divmod(keys, n)
        starts = np.searchsorted(rows_e, np.arange(count + 1))
        self.e_rows, self.e_items = rows_e, items_e
        self.extra_width = int(np.diff(starts).max(initial=0))
        # Each extra's "what comes next" (0 where the transitions do not reach it).
        reached = source < n_seq
        self.e_sequence = (
            np.where(reached, unit_values[np.minimum(source, max(n_seq - 1, 0))], 0.0).astype(np.float32)
            if n_seq
            else np.zeros(len(keys), dtype=np.float32)
        )
        self.e_cold = self.cold_row[self.e_items] >= 0
        if self.has_context:
            column = self.lift_column[self.e_items]
            self.e_lift = np.where(column >= 0, self.lift[rows_e, np.maximum(column, 0)], 0.0).astype(np.float32)
        if self.borrow:
            near = sequence[:, self.neighbours].toarray().astype(np.float32)
            self.near_sequence = near / self.sequence_top[:, None]
        if self._order is not None:
            # In norm order, what never counts towards a user's k-th best taste (block_taste): their
            # own items, and extras whose score may fall below their scaled taste (items with no
            # interactions are block_taste's own rule).
            counted = self.e_sequence >= 0
            if self.has_context:
                counted &= self.e_lift >= 0
            position = self._order.position
            if self._uncounted is None or self._uncounted.shape[0] < count:
                self._uncounted = np.zeros((count, n), dtype=bool)  # per thread's copy, kept for its blocks
            else:
                self._uncounted[self._uncounted_at] = False
            self._uncounted_at = (
                np.concatenate([rows_e[~counted], self.seen_rows]),
                position[np.concatenate([items_e[~counted], self.seen_items])],
            )
            self._uncounted[self._uncounted_at] = True
            self._extra_keys = keys
            # Per extra, shared by the half-lives: its place in norm order and its factors' norm.
            self._e_position = position[items_e]
            self._e_norm = self._norm_of_item[items_e]  # by item: the extras are sorted by item
            self._e_counts = np.diff(starts)
            self._aside_prepare()

    # ----------------------------------------------------------------- per half-life
    def inputs(self, half_life: float | None) -> np.ndarray | sp.csr_matrix:
        """Every user's taste input for this half-life, computed once for all blocks: ALS user
        vectors (stacked solves), or EASE's log-weights over its items."""
        if half_life in self._input_cache:
            return self._input_cache[half_life]
        probe, n = self.probe, self.n_items
        rows, cols, vals = [], [], []
        for r, (items, weights) in enumerate(self.history):
            if len(items) == 0:
                continue
            if half_life is not None:
                weights = weights * np.power(0.5, np.arange(len(items)) / half_life)
            if probe.cold_neighbours.nnz and (probe.popularity[items] <= 0).any():
                x = probe._input_vector(items, weights)
                items = np.flatnonzero(x)
                weights = x[items]
            rows.append(np.full(len(items), r))
            cols.append(items)
            vals.append(weights)
        x = _csr(rows, cols, vals, (len(self.history), n))
        hp = probe.hyperparameters
        if self.family == "als":
            x = x.multiply(x > 0).tocsr()
            confidence = sp.csr_matrix((1.0 + hp["alpha"] * x.data, x.indices, x.indptr), shape=x.shape)
            out = solve_users(probe.item_factors, probe.yty, hp["regularization"], confidence).astype(np.float32)
        else:
            out = x[:, probe.ease_items].tocsr().astype(np.float32)
            out.data = np.log1p(out.data)
        self._input_cache[half_life] = out
        return out

    def taste(self, half_life: float | None) -> None:
        probe, n = self.probe, self.n_items
        lo, hi = self.lo, self.hi
        count = hi - lo
        inputs = self.inputs(half_life)
        if self._order is not None:
            self._pruned_taste(half_life)
            return
        self.e_unknown = None
        groups = -(-n // _GROUP)
        # Scored straight into the group layout: padding columns come from zero factors.
        if self.family == "als":
            padded = inputs[lo:hi] @ self._padded().T
        else:
            padded = np.zeros((count, groups * _GROUP), dtype=np.float32)
            if len(probe.ease_items):
                padded[:, probe.ease_items] = inputs[lo:hi] @ probe.ease_weights
        taste = padded[:, :n]
        taste /= _row_top(taste)[:, None]
        # What the settings need of the unmasked taste, read before masking in place.
        self.e_taste = taste[self.e_rows, self.e_items]
        if self.borrow:
            self.near_taste = taste[:, self.neighbours]
        padded[:, n:] = -np.inf
        masked = taste
        masked[self.e_rows, self.e_items] = -np.inf
        masked[self.seen_rows, self.seen_items] = -np.inf
        if not self.borrow and len(self.cold):
            # Items with no interactions are left out where they score 0 or less.
            cold = masked[:, self.cold]
            masked[:, self.cold] = np.where(cold > 0, cold, -np.inf)
        k = min(CALIBRATED_RANKS, n)
        if k < groups:
            # The best k by taste, found through group maxima (engine.recipes.als_batch.top_n).
            best, values = grouped_top(padded, k, _GROUP, groups)
        else:
            best = np.argpartition(-masked, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (count, 1))
            values = np.take_along_axis(masked, best, axis=1)
        self.k = k
        self.best, self.best_present = best, np.isfinite(values)
        # Where present, the masked value is the taste itself; elsewhere it never counts.
        self.best_taste = np.where(self.best_present, values, 0.0).astype(np.float32)
        self.best_cold = probe.popularity[best] <= 0
        self._set_aside(values.min(axis=1))

    def tastes(self, half_lives: Sequence[float | None]) -> None:
        """Ahead of :meth:`taste` for each of these half-lives on this block: on the pruned path
        their users are scored together, so each chunk of the factors is read from memory once
        (with few users left in a chunk, reading it costs more than the product)."""
        if self._order is None or not half_lives:
            return
        count = self.hi - self.lo
        vectors = np.concatenate([self._block_vectors(self.inputs(h)) for h in half_lives])
        taste = self._scored_block(vectors, np.tile(np.arange(count), len(half_lives)))
        for i, h in enumerate(half_lives):
            self._stacked[h] = (vectors[i * count : (i + 1) * count], taste.rows(i * count, (i + 1) * count))

    def _block_vectors(self, inputs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(inputs[self.lo : self.hi], dtype=np.float32)

    def _scored_block(self, vectors: np.ndarray, users: np.ndarray) -> BlockTaste:
        if self._raw is None or self._raw.shape[0] < len(vectors):
            # Per thread's copy, kept for its blocks (only the scored start of each row is written).
            self._raw = np.empty((len(vectors), self.n_items), dtype=np.float32)
        k = min(CALIBRATED_RANKS, self.n_items)
        return block_taste(
            self._order,
            vectors,
            users,
            self._uncounted,
            self._cold_in_order,
            self._cold_floor,
            self._extra_keys,
            k,
            self._raw,
        )

    def _pruned_taste(self, half_life: float | None) -> None:
        """:meth:`taste` scoring items in norm order only as far as each user needs: extras past
        that keep a bound (``e_unknown``) and are scored one by one where a setting needs them."""
        n = self.n_items
        if half_life in self._stacked:
            vectors, taste = self._stacked.pop(half_life)
        else:
            vectors = self._block_vectors(self.inputs(half_life))
            taste = self._scored_block(vectors, np.arange(len(vectors)))
        k = min(CALIBRATED_RANKS, n)
        self._vectors, self._block_taste = vectors, taste
        rows, items, counts = self.e_rows, self.e_items, self._e_counts
        self.k = k
        self.best, self.best_present = taste.best, np.isfinite(taste.values)
        self.best_taste = np.where(self.best_present, taste.values, 0.0).astype(np.float32)
        self.best_cold = self.probe.popularity[self.best] <= 0
        # _set_aside's test with the threshold (every item below it that is not an extra scores
        # below k items in every setting), first with each extra's bound: only the extras it cannot
        # set aside are looked up (where scored) or scored one by one; the rest stay unknown (NaN).
        threshold = np.repeat(taste.threshold, counts)
        floor = threshold - self._aside_reach
        candidates = taste.bound(self._e_norm, counts) >= floor
        t = np.full(len(rows), np.nan, dtype=np.float32)
        if self.borrow:
            near = vectors @ self._near_factors.T
            near /= taste.top[:, None]
            self.near_taste = near
            # Cold extras' own taste is never read: they take what they borrow (as _set_aside does).
            near_t = (self.neighbours_of_cold @ near.T) * self.cold_weight
            t[self._cold_at] = np.take(near_t, self._cold_flat)
            candidates[self._cold_at] = False
        at = np.flatnonzero(candidates)
        t[at] = taste.taste_at(rows[at], self._e_position[at])
        at = at[np.isnan(t[at])]
        t[at] = exact(self.probe.item_factors, vectors, taste.top, rows[at], items[at])
        self.e_unknown = np.isnan(t)
        with np.errstate(invalid="ignore"):
            keep = t >= floor
        self.e_taste = t
        self.kept = np.flatnonzero(keep)
        lift = self.e_lift[self.kept] if self.has_context else None
        with np.errstate(invalid="ignore"):
            d = t[self.kept] - threshold[self.kept]
        self.kept_bound = (d, self._aside_sequence[self.kept], lift, ~np.isfinite(threshold[self.kept]))

    def _aside_prepare(self) -> None:
        """Per block, for :meth:`_pruned_taste`: each extra's "what comes next" (borrowed where
        cold items borrow) and how far below the threshold its taste may be and still be kept: some
        corner of the settings' box lifts it to within the margin (_set_aside's test, solved for
        the taste; every mix is below 1 here)."""
        s = self.e_sequence
        if self.borrow:
            self._cold_at = np.flatnonzero(self.e_cold)
            self._cold_column = self.cold_row[self.e_items[self._cold_at]]
            # Where each cold extra's borrowed score lies in a (cold items × users) product.
            self._cold_flat = self._cold_column * (self.hi - self.lo) + self.e_rows[self._cold_at]
            near_s = (self.neighbours_of_cold @ self.near_sequence.T) * self.cold_weight
            s = s.copy()
            s[self._cold_at] = near_s[self._cold_column, self.e_rows[self._cold_at]]
        self._aside_sequence = s
        reach = np.full(len(s), -np.inf, dtype=np.float32)
        for m in set(self.mix_range):
            for g in set(self.weight_range):
                lifted = m * s + self._MARGIN
                if g and self.has_context:
                    lifted += g * self.e_lift
                np.maximum(reach, lifted / (1.0 - m), out=reach)
        self._aside_reach = reach

    def _fill(self, extras: np.ndarray) -> None:
        """Score these extras where the pruned taste left them unscored."""
        if self.e_unknown is None:
            return
        extras = extras[self.e_unknown[extras]]
        if len(extras):
            taste = self._block_taste
            rows, items = self.e_rows[extras], self.e_items[extras]
            self.e_taste[extras] = exact(self.probe.item_factors, self._vectors, taste.top, rows, items)
            self.e_unknown[extras] = False

    def _set_aside(self, kth: np.ndarray) -> None:
        """Keep the extras that some setting in the box could lift to ``kth`` (each user's k-th
        best taste score among the rest; -inf where fewer than k are left: everything is kept),
        with the parts of their score (taste, "what comes next", lift) for :meth:`top`'s own bound."""
        t, s = self.e_taste.copy(), self.e_sequence
        if self.borrow:
            w = self.cold_weight
            cold_at = np.flatnonzero(self.e_cold)
            column = self.cold_row[self.e_items[cold_at]]
            near_t = (self.neighbours_of_cold @ self.near_taste.T) * w
            near_s = (self.neighbours_of_cold @ self.near_sequence.T) * w
            t[cold_at] = near_t[column, self.e_rows[cold_at]]
            s = s.copy()
            s[cold_at] = near_s[column, self.e_rows[cold_at]]
        lift = self.e_lift if self.has_context else None
        threshold = kth[self.e_rows]
        open_rows = ~np.isfinite(threshold)
        with np.errstate(invalid="ignore"):
            d = t - threshold
            keep = open_rows.copy()
            for m in self.mix_range:
                for g in self.weight_range:
                    bound = (1.0 - m) * d + m * s
                    if g and lift is not None:
                        bound += g * lift
                    keep |= bound >= -self._MARGIN
        self.kept = np.flatnonzero(keep)
        self.kept_bound = (d[self.kept], s[self.kept], None if lift is None else lift[self.kept], open_rows[self.kept])

    # ----------------------------------------------------------------- per setting
    def top(self, mix: float, context_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """(items, valid) of the block's users: their best new items, best first."""
        count, k = self.hi - self.lo, self.k
        # With a mix of 1 every best-by-taste item scores 0 (and a cold one drops out): no bound.
        inside = self.mix_range[0] <= mix <= self.mix_range[1] < 1.0 and (
            self.weight_range[0] <= context_weight <= self.weight_range[1]
        )
        if inside:
            d, s, lift, open_rows = self.kept_bound
            with np.errstate(invalid="ignore"):
                bound = (1.0 - mix) * d + mix * s
                if context_weight and lift is not None:
                    bound += context_weight * lift
            kept = self.kept[open_rows | (bound >= -self._MARGIN)]
        else:
            kept = np.arange(len(self.e_rows))
            self._fill(kept)
        rows = self.e_rows[kept]
        # Scores as the full candidate matrix computes them, element for element.
        extra = self._extra_scores(kept, mix, context_weight)
        best = (1.0 - mix) * self.best_taste + mix * np.zeros_like(self.best_taste)
        if context_weight:
            best += context_weight * np.zeros_like(best)
        best[~self.best_present] = -np.inf
        best[self.best_cold & (best <= 0)] = -np.inf
        starts = np.searchsorted(rows, np.arange(count + 1))
        width = k + int(np.diff(starts).max(initial=0))
        scores = np.full((count, width), np.inf, dtype=np.float32)  # negated below
        items = np.zeros((count, width), dtype=np.int64)
        scores[:, :k], items[:, :k] = -best, self.best
        # Kept extras stay in candidate order (after the best k, by item), so ties fall by position.
        column = k + np.arange(len(rows)) - starts[rows]
        scores[rows, column], items[rows, column] = -extra, self.e_items[kept]
        out_width = min(CALIBRATED_RANKS, k + self.extra_width)
        # The first out_width + 1 (any order), then those sorted: enough to rank and to see ties.
        head = min(out_width + 1, width)
        if head < width:
            part = np.argpartition(scores, head - 1, axis=1)[:, :head]
        else:
            part = np.tile(np.arange(width), (count, 1))
        by_score = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(part, by_score, axis=1)
        ranked = -np.take_along_axis(scores, order, axis=1)
        chosen = np.zeros((count, out_width), dtype=np.int64)
        valid = np.zeros((count, out_width), dtype=bool)
        n_out = min(out_width, order.shape[1])
        chosen[:, :n_out] = np.take_along_axis(items, order[:, :n_out], axis=1)
        valid[:, :n_out] = np.isfinite(ranked[:, :n_out])
        # Where two finite scores tie among the first k + 1, the full row decides (see the class).
        tied = (np.isfinite(ranked[:, :-1]) & (ranked[:, :-1] == ranked[:, 1:])).any(axis=1)
        if tied.any():
            full_items, full_valid = self._full_rows(np.flatnonzero(tied), mix, context_weight)
            chosen[tied], valid[tied] = full_items, full_valid
        return chosen, valid

    def _extra_scores(self, kept: np.ndarray, mix: float, context_weight: float) -> np.ndarray:
        scores = (1.0 - mix) * self.e_taste[kept] + mix * self.e_sequence[kept]
        if self.borrow:
            cold = np.flatnonzero(self.e_cold[kept])
            if len(cold):
                at = kept[cold]
                need, column = np.unique(self.cold_row[self.e_items[at]], return_inverse=True)
                near = (1.0 - mix) * self.near_taste + mix * self.near_sequence
                borrowed = self.cold_weight * (self.neighbours_of_cold[need] @ near.T)
                scores[cold] = borrowed[column, self.e_rows[at]]
        if context_weight:
            scores += context_weight * self.e_lift[kept]
        scores[self.e_cold[kept] & (scores <= 0)] = -np.inf
        return scores

    def _full_rows(self, rows: np.ndarray, mix: float, context_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """These users' lists ranked over every candidate, laid out as one block-wide matrix (the
        best k, then every extra by item, then padding) so that ties fall as they always did."""
        k, width = self.k, self.k + self.extra_width
        starts = np.searchsorted(self.e_rows, np.arange(self.hi - self.lo + 1))
        if self.e_unknown is not None:
            self._fill(np.concatenate([np.arange(starts[r], starts[r + 1]) for r in rows.tolist()]))
        c = np.zeros((len(rows), width), dtype=np.int64)
        present = np.zeros((len(rows), width), dtype=bool)
        c_taste = np.zeros((len(rows), width), dtype=np.float32)
        c_sequence = np.zeros((len(rows), width), dtype=np.float32)
        c_lift = np.zeros((len(rows), width), dtype=np.float32)
        for j, r in enumerate(rows.tolist()):
            e = np.arange(starts[r], starts[r + 1])
            c[j, :k], c[j, k : k + len(e)] = self.best[r], self.e_items[e]
            present[j, :k], present[j, k : k + len(e)] = self.best_present[r], True
            c_taste[j, :k], c_taste[j, k : k + len(e)] = self.best_taste[r], self.e_taste[e]
            c_sequence[j, k : k + len(e)] = self.e_sequence[e]
            if self.has_context:  # the best k and the padding carry no lift (or do not count)
                c_lift[j, k : k + len(e)] = self.e_lift[e]
        scores = (1.0 - mix) * c_taste + mix * c_sequence
        c_cold = self.probe.popularity[c] <= 0
        if self.borrow:
            near = (1.0 - mix) * self.near_taste[rows] + mix * self.near_sequence[rows]
            borrowed = self.cold_weight * (self.neighbours_of_cold @ near.T).T
            at = np.nonzero(c_cold & present)
            scores[at] = borrowed[at[0], self.cold_row[c[at]]]
        if context_weight:
            scores += context_weight * c_lift
        scores[~present] = -np.inf
        scores[c_cold & (scores <= 0)] = -np.inf
        n_top = min(CALIBRATED_RANKS, width)
        part = (
            np.argpartition(-scores, n_top - 1, axis=1)[:, :n_top]
            if n_top < width
            else np.tile(np.arange(width), (len(rows), 1))
        )
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, axis=1)
        return np.take_along_axis(c, chosen, axis=1), np.isfinite(np.take_along_axis(scores, chosen, axis=1))


def _row_top(scores: np.ndarray) -> np.ndarray:
    """Each row's largest magnitude, 1 where a row is all zero (as ``_unit`` divides)."""
    if not scores.shape[1]:
        return np.ones(len(scores), dtype=scores.dtype)
    top = np.maximum(scores.max(axis=1), -scores.min(axis=1))
    return np.where(top > 0, top, 1.0).astype(scores.dtype)


def _csr(rows: list, cols: list, vals: list, shape: tuple[int, int]) -> sp.csr_matrix:
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float64)
    out = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float64), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )
    out.sum_duplicates()
    return out
