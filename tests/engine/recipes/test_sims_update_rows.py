"""sims UPDATE recomputes only the rows the new events reach, and splices them into the previous
matrices: the result must be the same, entry for entry and bit for bit, as applying the update to
the whole matrices at once (the form below, which the row-wise code replaced for speed)."""

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import TrainingData, sims_update
from engine.recipes.sequences import transitions_gained
from engine.recipes.sims import TRANSITION_DECAY, Sims, _keep_top
from engine.recipes.vocabulary import carry, carry_rows, vocabulary_map
from engine.recipes.weighting import user_item_matrix
from tests.engine.recipes.contract import clustered_data
from tests.engine.recipes.test_sims_update import with_new_events


# ------------------------------------------------------------------ the whole-matrix reference
def whole_matrix_update(model: Sims, previous: Sims, data: TrainingData) -> Sims:
    hp = model.hyperparameters
    new = np.asarray(data.new_events, dtype=bool)
    old_to_new = vocabulary_map(previous.item_ids, data.item_ids)
    assert np.all(old_to_new >= 0)
    n = data.n_items
    weights = model.event_weights(data)
    fresh = new & (weights > 0)
    affected = np.zeros(data.n_users, dtype=bool)
    affected[data.user_index[fresh]] = True
    events = affected[data.user_index]
    counted = weights > 0
    users = np.unique(data.user_index[events & counted])
    row = np.full(data.n_users, -1, dtype=np.int64)
    row[users] = np.arange(len(users))
    after, before = (
        user_item_matrix(row[data.user_index[keep]], data.item_index[keep], weights[keep], len(users), n)
        for keep in (events & counted, events & counted & ~new)
    )
    k = max(hp["neighbours"] - 1, 0)
    if len(previous.norms) == len(previous.item_ids):  # the norms the previous version kept, updated
        norms = carry(previous.norms, old_to_new, n) + column_squares(after) - column_squares(before)
    else:  # an artifact from before they were kept: over the whole matrix
        all_events = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, n)
        norms = np.asarray(all_events.power(2).sum(axis=0), dtype=np.float64).ravel()
    carried = carry_rows(previous.similarity, old_to_new, n, columns=True)
    model.similarity = _keep_top(whole_matrix_similarity(carried, norms, after, before), k)

    mine = events & counted
    change = transitions_gained(
        data, np.flatnonzero(mine), new[mine], window=hp["sequence_window"], decay=TRANSITION_DECAY
    )
    sequence = (carry_rows(previous.sequence, old_to_new, n, columns=True) + change + change.T).tocsr()
    sequence.data[sequence.data < 1e-6] = 0.0
    sequence.eliminate_zeros()
    model.sequence = _keep_top(sequence, hp["neighbours"])
    gained = np.bincount(data.item_index[fresh], weights=weights[fresh], minlength=n)
    model.popularity = carry(previous.popularity, old_to_new, n) + gained
    model._set_items(data.item_ids)
    return model


def column_squares(matrix):
    return np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()


def whole_matrix_similarity(previous, norms_squared, after, before):
    def scaled(matrix, factor):
        matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        factor = factor.astype(np.float32)
        matrix.data *= np.repeat(factor, np.diff(matrix.indptr))
        matrix.data *= factor[matrix.indices]
        return matrix

    new_norm = np.sqrt(norms_squared)
    old_norm = np.sqrt(np.maximum(norms_squared - column_squares(after) + column_squares(before), 0.0))
    inverse = np.divide(1.0, new_norm, out=np.zeros_like(new_norm), where=new_norm > 0)
    ratio = old_norm * inverse
    added = (after - before).tocsr()
    added.eliminate_zeros()
    change = (added.T @ after + before.T @ added).tocsr()
    change.setdiag(0)
    change.eliminate_zeros()
    pattern = change.copy()
    pattern.data[:] = 1.0
    mirrored = pattern.T.tocsr().multiply(previous).T.tocsr()
    here = pattern.multiply(previous)
    here.data[:] = 1.0
    mirrored = (mirrored - mirrored.multiply(here)).tocsr()
    mirrored.eliminate_zeros()
    result = (scaled(previous, ratio) + (scaled(mirrored, ratio) + scaled(change, inverse))).tocsr()
    result.data[result.data <= 1e-7] = 0.0
    result.eliminate_zeros()
    return result


# ------------------------------------------------------------------------------- comparisons
def assert_identical(model: Sims, expected: Sims) -> None:
    np.testing.assert_array_equal(model.item_ids, expected.item_ids)
    for name in ("similarity", "sequence"):
        got, want = getattr(model, name).tocsr(), getattr(expected, name).tocsr()
        assert got.shape == want.shape and got.dtype == want.dtype == np.float32, name
        np.testing.assert_array_equal(got.indptr, want.indptr, err_msg=name)
        np.testing.assert_array_equal(got.indices, want.indices, err_msg=name)
        np.testing.assert_array_equal(got.data, want.data, err_msg=name)  # bit for bit
    np.testing.assert_array_equal(model.popularity, expected.popularity)


@pytest.fixture(params=["kept", "not kept"])
def norms(request, monkeypatch):
    """Every comparison twice: from a previous version that kept its norms, and from one that did
    not (an older artifact: the update reads the events on the items concerned)."""
    if request.param == "not kept":
        original = Sims._fit_core

        def without_norms(self, data):
            original(self, data)
            self.norms = np.empty(0)

        monkeypatch.setattr(Sims, "_fit_core", without_norms)
    return request.param


@pytest.fixture(autouse=True)
def _both_norms(norms):
    return norms


def both(previous: Sims, data: TrainingData, **hyperparameters) -> tuple[Sims, Sims]:
    settings = {**previous.hyperparameters, **hyperparameters}
    model = Sims(**settings)
    assert sims_update.update(model, previous, data)
    return model, whole_matrix_update(Sims(**settings), previous, data)


def grown(seed: int = 3, n_new_users: int = 12, **hyperparameters) -> tuple[Sims, TrainingData]:
    """A fitted model and its data grown by new shoppers, new items and more events of existing
    shoppers, over many items (long neighbour lists get cut)."""
    old = clustered_data(seed=seed, n_items=60)
    previous = Sims(sequence_weight=0.5, **hyperparameters).fit(old)
    rng = np.random.default_rng(seed)
    users = [f"n{u}" for u in range(n_new_users) for _ in range(5)] + ["u0", "u0", "u3", "u7", "u7"]
    items = [f"{'ab'[rng.integers(0, 2)]}{rng.integers(0, 40)}" for _ in range(len(users) - 5)]
    items += ["a1", "z-new", "b2", "a-new", "a3"]
    types = [("view", "purchase", "add-to-cart")[t] for t in rng.integers(0, 3, len(users))]
    return previous, with_new_events(old, users, items, types)


@pytest.mark.parametrize("neighbours", [1, 2, 6, 100])
def test_the_row_wise_update_is_the_whole_matrix_update(neighbours):
    previous, data = grown(neighbours=neighbours)
    assert_identical(*both(previous, data))


def test_the_same_with_weights_float32_does_not_add_exactly():
    # Norms are then read over the whole histories of the shoppers concerned, not their events
    # on the items alone: the order each (shopper, item) sum is added in still matches.
    weights = {"view": 0.1, "purchase": 0.7, "add-to-cart": 0.3}
    assert not sims_update._adds_exactly(np.array([0.1, 0.7]))
    assert sims_update._adds_exactly(np.array([1.0, 5.0, 0.5, 0.0]))
    previous, data = grown(seed=5, neighbours=8, event_weights=weights)
    assert_identical(*both(previous, data))


def test_the_same_counting_only_some_event_types():
    previous, data = grown(seed=7, neighbours=8, event_types=["purchase", "add-to-cart"])
    assert_identical(*both(previous, data))


def test_the_same_when_previous_rows_are_longer_than_kept():
    # A FULL fit keeps up to ``neighbours`` per row (the item itself among them), an UPDATE one
    # fewer: rows the new events never reach are cut too.
    previous, data = grown(seed=11, neighbours=30)
    assert np.diff(previous.similarity.indptr).max() > 9
    assert_identical(*both(previous, data, neighbours=10))


def test_the_same_when_the_old_items_come_in_another_order():
    previous, data = grown(seed=13, neighbours=8)
    order = np.random.default_rng(1).permutation(len(previous.item_ids))
    permuted = Sims(**previous.hyperparameters)
    permuted.sequence_weight = previous.sequence_weight
    permuted.similarity = previous.similarity[order][:, order].tocsr()
    permuted.sequence = previous.sequence[order][:, order].tocsr()
    permuted.popularity = previous.popularity[order]
    permuted._set_items(previous.item_ids[order])
    assert_identical(*both(permuted, data))


def test_the_same_when_entries_fall_under_the_floors():
    previous, data = grown(seed=17, neighbours=8)
    # Tiny entries in rows no new event reaches: the update drops them like the whole form does.
    reached = set(data.item_index[data.new_events].tolist())
    quiet = [i for i in range(len(previous.item_ids)) if i not in reached and previous.similarity[i].nnz]
    similarity, sequence = previous.similarity.tolil(), previous.sequence.tolil()
    for item in quiet[:3]:
        column = int(previous.similarity[item].indices[0])
        similarity[item, column] = 5e-8
        sequence[item, column] = 5e-7
    previous.similarity, previous.sequence = similarity.tocsr(), sequence.tocsr()
    model, expected = both(previous, data)
    assert_identical(model, expected)
    assert not np.any(model.similarity.data <= 1e-7) and not np.any(model.sequence.data < 1e-6)


def test_the_same_without_new_counted_events():
    old = clustered_data(seed=2)
    previous = Sims(sequence_weight=0.5, neighbours=5).fit(old)
    data = with_new_events(old, ["u1", "u2"], ["a1", "brand-new"], ["view", "view"])
    assert_identical(*both(previous, data, event_types=["purchase"]))


def test_the_same_when_a_norm_changes_in_a_row_no_pair_changes():
    # A shopper whose only item is one already known: its norm (so its whole row) is rescaled,
    # yet no pair gains a dot product; and no new item joins the vocabulary.
    old = clustered_data(seed=4)
    previous = Sims(sequence_weight=0.5, neighbours=6).fit(old)
    data = with_new_events(old, ["solo", "solo", "solo"], ["a5", "a5", "a5"], ["view", "purchase", "view"])
    np.testing.assert_array_equal(data.item_ids, previous.item_ids)
    model, expected = both(previous, data)
    assert_identical(model, expected)
    a5 = int(np.flatnonzero(data.item_ids == "a5")[0])
    assert not np.array_equal(model.similarity[a5].data, previous.similarity[a5].data)


def test_the_same_from_rows_stored_out_of_order():
    previous, data = grown(seed=19, neighbours=8)
    for name in ("similarity", "sequence"):
        matrix = getattr(previous, name).tocsr()
        reversed_rows = np.concatenate(
            [np.arange(matrix.indptr[r + 1] - 1, matrix.indptr[r] - 1, -1) for r in range(matrix.shape[0])]
        ).astype(np.int64)
        shuffled = sp.csr_matrix(
            (matrix.data[reversed_rows], matrix.indices[reversed_rows], matrix.indptr), shape=matrix.shape
        )
        assert not shuffled.has_sorted_indices
        setattr(previous, name, shuffled)
    assert_identical(*both(previous, data))


# ------------------------------------------------------------- written straight into the artifact
@pytest.mark.parametrize("block", [1, 7, 1 << 20])
@pytest.mark.parametrize("sure", [0.5, 1.0])
def test_the_matrices_written_block_by_block_are_the_whole_matrix_update(tmp_path, monkeypatch, block, sure):
    # An UPDATE's matrices are described (mostly the previous arrays) and written to the artifact a
    # block of rows at a time, never laid out in memory: the file must hold the reference's arrays,
    # entries under the floors (found before anything is written) left out, whatever the blocks.
    monkeypatch.setattr(sims_update, "SPLICE_BLOCK", block)
    monkeypatch.setattr(sims_update, "SURE_FACTOR", sure)  # 1.0: every rescaled entry is checked
    previous, data = grown(seed=17, neighbours=8)
    reached = set(data.item_index[data.new_events].tolist())
    quiet = [i for i in range(len(previous.item_ids)) if i not in reached and previous.sequence[i].nnz]
    similarity, sequence = previous.similarity.tolil(), previous.sequence.tolil()
    for item in quiet[:3]:  # existing entries replaced: the rows keep their lengths
        if previous.similarity[item].nnz:
            similarity[item, int(previous.similarity[item].indices[0])] = 5e-8
        sequence[item, int(previous.sequence[item].indices[0])] = 5e-7
    previous.similarity, previous.sequence = similarity.tocsr(), sequence.tocsr()
    model = Sims(**previous.hyperparameters)
    assert sims_update.update(model, previous, data)
    assert isinstance(model._similarity, sims_update._Spliced)  # not laid out before saving
    assert len(model._similarity.dropped) and len(model._sequence.dropped)
    saved = Sims.load(model.save(tmp_path / "updated.npz"))
    expected = whole_matrix_update(Sims(**previous.hyperparameters), previous, data)
    assert_identical(saved, expected)
    assert_identical(model, expected)  # laid out in memory where something reads it


def test_an_update_whose_rescaling_takes_an_entry_under_the_floor_drops_it(tmp_path):
    # A carried entry just over the floor in a column whose item's norm grows: rescaled, it falls
    # under the floor, which only computing its new value can tell.
    previous, data = grown(seed=3, neighbours=100)
    settings = previous.hyperparameters
    model = Sims(**settings)
    assert sims_update.update(model, previous, data)
    spliced = model._similarity
    old = spliced.old.matrix
    old_rows = np.repeat(np.arange(old.shape[0]), np.diff(old.indptr))
    new_rows = spliced.old.old_to_new[old_rows]
    candidates = np.flatnonzero(spliced.carried[new_rows] & (spliced.old_column_factor[old.indices] < 0.99))
    assert len(candidates)
    at = int(candidates[0])
    similarity = previous.similarity.tolil()
    similarity[int(old_rows[at]), int(old.indices[at])] = np.float32(1.0000001e-7)
    previous.similarity = similarity.tocsr()
    model = Sims(**settings)
    assert sims_update.update(model, previous, data)
    assert len(model._similarity.dropped) == 1
    assert_identical(Sims.load(model.save(tmp_path / "u.npz")), whole_matrix_update(Sims(**settings), previous, data))
