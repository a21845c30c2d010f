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
score is a monotone function of taste (so their best by taste are their best by score).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from engine.recipes.als_batch import grouped_top, solve_users
from engine.recipes.attribute_popularity import AttributePopularity
from engine.recipes.base import TrainingData
from engine.recipes.repeats import RankCalibration, RepeatModel
from engine.recipes.sequences import events_by_user
from engine.recipes.validation import (
    INPUT_SHARE,
    Case,
    holdout,
    interactions,
    ndcg_at_10,
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
#: Taste-matrix elements (float32) per block of held-out users (about 32 MB).
_BLOCK_ELEMENTS = 8_000_000
#: Items are dealt into groups of this many to find each user's best by taste.
_GROUP = 32
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


def select(model: UserPersonalization, data: TrainingData, features: sp.csr_matrix) -> Selection:
    """Choose family and settings for ``model`` on held-out users of ``data``; on large data the
    model is left fitted as a side effect (``Selection.fitted``)."""
    hp = model.hyperparameters
    families = FAMILIES if hp["model"] == "auto" else (hp["model"],)
    if hp["model"] == "auto" and np.unique(data.item_index).size > hp["ease_max_items"] * 4:
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
    attributes = AttributePopularity().fit(train, model._weights(train))
    # The held-out users' own items may drop out of the vocabulary; the catalog's do not.
    train_features = features[np.searchsorted(data.item_ids, train.item_ids)]
    best: tuple[float, Choice, RankCalibration] | None = None
    for family in families:
        probe = type(model)(**hp)
        probe._fit_core(train, family, features=train_features, need_als=family == "als")
        probe.repeats, probe.attributes = repeats, attributes
        for choice, calibration, ndcg in score_settings(probe, cases, family, half_lives, mixes):
            if best is None or ndcg > best[0] + 1e-12:
                best = (ndcg, choice, calibration)
    assert best is not None
    return Selection(best[1], best[2])


def _select_shared(
    model: UserPersonalization,
    data: TrainingData,
    features: sp.csr_matrix,
    held_out: np.ndarray,
    families: Sequence[str],
    half_lives: Sequence[float | None],
    mixes: Sequence[float],
) -> Selection:
    """One fit without the held-out users' answers: it is the probe, then the final model."""
    hp = model.hyperparameters
    train, cases = holdout_answers(data, held_out)
    # One core holds every family asked for (the ALS factors are kept whichever wins).
    model._fit_core(train, "ease" if "ease" in families else "als", features=features, need_als=True)
    model.repeats = RepeatModel.fit(train, seed=hp["random_state"]) if hp["learn_repeats"] else RepeatModel()
    model.attributes = AttributePopularity().fit(train, model._weights(train))
    best: tuple[float, Choice, RankCalibration] | None = None
    for family in families:
        for choice, calibration, ndcg in score_settings(model, cases, family, half_lives, mixes):
            if best is None or ndcg > best[0] + 1e-12:
                best = (ndcg, choice, calibration)
    assert best is not None
    if best[1].family != "ease":
        model.ease_items, model.ease_weights = np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    return Selection(best[1], best[2], fitted=True)


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
    keep = np.flatnonzero(~drop)
    train = TrainingData(
        user_ids=data.user_ids,
        item_ids=data.item_ids,
        user_index=data.user_index[keep],
        item_index=data.item_index[keep],
        event_types=data.event_types[keep],
        event_values=data.event_values[keep],
        timestamps=data.timestamps[keep],
        items=data.items,
        users=data.users,
        session_ids=None if data.session_ids is None else data.session_ids[keep],
        contexts=None if data.contexts is None else data.contexts[keep],
    )
    return train, cases


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
    settings = [(h, m, g) for h in half_lives for m in mixes for g in (CONTEXT_WEIGHTS if has_context else (0.0,))]
    if not usable:
        for h, m, g in settings:
            yield Choice(family, h, m, 0.0, g), RankCalibration(), 0.0
        return
    seen = [probe._seen(c.history) for c in usable]
    truth = [probe.indices(c.truth) for c in usable]
    tops = {k: np.zeros((len(usable), CALIBRATED_RANKS), dtype=np.int64) for k in settings}
    valid = {k: np.zeros((len(usable), CALIBRATED_RANKS), dtype=bool) for k in settings}
    scorer = _Scorer(probe, family, usable, [s[0] for s in seen], has_context)
    for lo, hi in scorer.blocks():
        scorer.block(lo, hi)
        for h in half_lives:
            scorer.taste(h)
            for key in (k for k in settings if k[0] == h):
                top, ok = scorer.top(key[1], key[2])
                tops[key][lo:hi, : top.shape[1]] = top
                valid[key][lo:hi, : top.shape[1]] = ok
    for key in settings:
        hits = np.zeros((len(usable), CALIBRATED_RANKS))
        for r in range(len(usable)):
            hits[r] = np.isin(tops[key][r], truth[r]) & valid[key][r]
        calibration = RankCalibration.from_hits(hits)
        ndcg = float(
            np.mean(
                [
                    ndcg_at_10(
                        probe.item_ids[probe._merged(tops[key][r][valid[key][r]], calibration, *seen[r], n=10)[0]],
                        usable[r].truth,
                    )
                    for r in range(len(usable))
                ]
            )
        )
        yield Choice(family, key[0], key[1], ndcg, key[2]), calibration, ndcg


class _Scorer:
    """The held-out users' scores a block at a time: taste per half-life, then per (mix, context
    weight) the top new items among a few candidates per user (see the module docstring)."""

    def __init__(
        self,
        probe: UserPersonalization,
        family: str,
        cases: Sequence[Case],
        seen: Sequence[np.ndarray],
        has_context: bool,
    ) -> None:
        self.probe, self.family, self.has_context = probe, family, has_context
        self.n_items = n = len(probe.item_ids)
        self.seen = [np.unique(s).astype(np.int64) for s in seen]
        self.history = [probe._history_weights(c.history) for c in cases]
        self.contexts = [c.context for c in cases]
        self.cold = np.flatnonzero(probe.popularity <= 0)
        hp = probe.hyperparameters
        self.borrow = bool(probe.cold_neighbours.nnz) and hp["cold_item_weight"] > 0 and len(self.cold) > 0
        if self.borrow:
            of_cold = probe.cold_neighbours[self.cold].tocsr()
            self.neighbours = np.unique(of_cold.indices)
            local = np.full(n, -1, dtype=np.int64)
            local[self.neighbours] = np.arange(len(self.neighbours))
            self.neighbours_of_cold = sp.csr_matrix(
                (of_cold.data, local[of_cold.indices], of_cold.indptr), shape=(len(self.cold), len(self.neighbours))
            )
        # "What comes next" for every user, sparse (users × items).
        window = hp["sequence_window"]
        from engine.recipes.user_personalization import SEED_DECAY

        rows, cols, vals = [], [], []
        for r, (items, _) in enumerate(self.history):
            if len(items) == 0:
                continue
            x = probe._input_vector(items[:window], np.power(SEED_DECAY, np.arange(min(len(items), window))))
            nz = np.flatnonzero(x)
            rows.append(np.full(len(nz), r))
            cols.append(nz)
            vals.append(x[nz])
        shape = (len(self.history), n)
        seeds = _csr(rows, cols, vals, shape)
        transitions = probe.transitions.astype(np.float64)
        self.sequence = (seeds @ transitions).tocsr() if probe.transitions.nnz else sp.csr_matrix(shape)
        self._input_cache: dict = {}

    def blocks(self) -> Iterator[tuple[int, int]]:
        size = max(1, _BLOCK_ELEMENTS // max(self.n_items, 1))
        for lo in range(0, len(self.history), size):
            yield lo, min(lo + size, len(self.history))

    # ----------------------------------------------------------------- per block
    def block(self, lo: int, hi: int) -> None:
        """What does not depend on the setting: "what comes next", the context lift, and which
        items each user's blend may lift above their taste order."""
        probe, n = self.probe, self.n_items
        count = hi - lo
        self.lo, self.hi = lo, hi
        sequence = self.sequence[lo:hi].toarray().astype(np.float32)
        self.unit_sequence = sequence / _row_top(sequence)[:, None]
        self.lift = np.zeros((count, n) if self.has_context else (count, 0), dtype=np.float32)
        if self.has_context:
            for k, r in enumerate(range(lo, hi)):
                if (row := probe.attributes.context_lift(self.contexts[r])) is not None:
                    self.lift[k, probe.attributes.items] = row
        # Items whose blended score is not a monotone function of taste: what the transitions or
        # the context reach, and items with no interactions when they borrow from neighbours.
        special = sequence != 0
        if self.has_context:
            special[:, probe.attributes.items] = True
        if self.borrow:
            special[:, self.cold] = True
        self.special = special
        self.extra = []
        for j, r in enumerate(range(lo, hi)):
            more = np.flatnonzero(special[j])
            self.extra.append(more[~np.isin(more, self.seen[r], assume_unique=True)])

    # ----------------------------------------------------------------- per half-life
    def _inputs(self, half_life: float | None) -> np.ndarray | sp.csr_matrix:
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
        inputs = self._inputs(half_life)
        if self.family == "als":
            taste = inputs[lo:hi] @ probe.item_factors.T
        else:
            taste = np.zeros((count, n), dtype=np.float32)
            if len(probe.ease_items):
                taste[:, probe.ease_items] = inputs[lo:hi] @ probe.ease_weights
        taste /= _row_top(taste)[:, None]
        self.unit_taste = taste
        groups = -(-n // _GROUP)
        padded = np.full((count, groups * _GROUP), -np.inf, dtype=np.float32)
        masked = padded[:, :n]
        masked[...] = taste
        masked[self.special] = -np.inf
        for k, r in enumerate(range(lo, hi)):
            masked[k, self.seen[r]] = -np.inf
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
        width = max((len(e) for e in self.extra), default=0)
        c = np.zeros((count, k + width), dtype=np.int64)
        present = np.zeros((count, k + width), dtype=bool)
        c[:, :k] = best
        present[:, :k] = np.isfinite(values)
        for j, e in enumerate(self.extra):
            c[j, k : k + len(e)] = e
            present[j, k : k + len(e)] = True
        self.candidates, self.present = c, present
        self.c_taste = np.take_along_axis(taste, c, axis=1)
        self.c_sequence = np.take_along_axis(self.unit_sequence, c, axis=1)
        self.c_lift = np.take_along_axis(self.lift, c, axis=1) if self.has_context else None
        self.c_cold = probe.popularity[c] <= 0
        if self.borrow:
            self.near_taste = taste[:, self.neighbours]
            self.near_sequence = self.unit_sequence[:, self.neighbours]
            position = np.full(n, -1, dtype=np.int64)
            position[self.cold] = np.arange(len(self.cold))
            self.c_cold_at = np.nonzero(self.c_cold & present)
            self.c_cold_column = position[c[self.c_cold_at]]

    # ----------------------------------------------------------------- per setting
    def top(self, mix: float, context_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """(items, valid) of the block's users: their best new items, best first."""
        scores = (1.0 - mix) * self.c_taste + mix * self.c_sequence
        if self.borrow:
            near = (1.0 - mix) * self.near_taste + mix * self.near_sequence
            borrowed = self.probe.hyperparameters["cold_item_weight"] * (self.neighbours_of_cold @ near.T).T
            scores[self.c_cold_at] = borrowed[self.c_cold_at[0], self.c_cold_column]
        if context_weight:
            scores += context_weight * self.c_lift
        scores[~self.present] = -np.inf
        scores[self.c_cold & (scores <= 0)] = -np.inf
        k = min(CALIBRATED_RANKS, scores.shape[1])
        part = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < scores.shape[1]
            else np.tile(np.arange(scores.shape[1]), (len(scores), 1))
        )
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, axis=1)
        return (
            np.take_along_axis(self.candidates, chosen, axis=1),
            np.isfinite(np.take_along_axis(scores, chosen, axis=1)),
        )


def _row_top(scores: np.ndarray) -> np.ndarray:
    """Each row's largest magnitude, 1 where a row is all zero (as ``_unit`` divides)."""
    top = np.abs(scores).max(axis=1) if scores.shape[1] else np.zeros(len(scores), dtype=scores.dtype)
    return np.where(top > 0, top, 1.0).astype(scores.dtype)


def _csr(rows: list, cols: list, vals: list, shape: tuple[int, int]) -> sp.csr_matrix:
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float64)
    out = sp.csr_matrix(
        (np.concatenate(vals).astype(np.float64), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )
    out.sum_duplicates()
    return out
