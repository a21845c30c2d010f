"""Training snapshots are written aligned and mapped on load (engine.recipes.array_file); one that
numpy wrote (as snapshots were written before) is still used."""

from __future__ import annotations

import numpy as np

from engine.jobs.snapshot import SNAPSHOT_FILE, snapshot_directory
from engine.jobs.train import load_training_data
from engine.recipes.array_file import ALIGN
from tests.engine.jobs.test_snapshot import GROUP, assert_same, events, fill, reads, reference  # noqa: F401 (fixture)


def test_a_snapshot_numpy_wrote_is_still_used(store, tmp_path, reads):  # noqa: F811
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    path = directory / SNAPSHOT_FILE
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(path, **arrays)
    watermark = int(reference(store).interaction_ids.max())
    store.ingest(GROUP, events(range(15, 30), 27, 1_700_000_000, seed=2))
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [watermark]  # the snapshot was used: only the rows above it were read


def test_a_snapshot_keeps_its_arrays_aligned(store, tmp_path):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    data = load_training_data(store, GROUP, snapshot_dir=directory)
    content = (directory / SNAPSHOT_FILE).read_bytes()
    ids = np.asarray(data.interaction_ids, dtype=np.int64)
    assert content.index(ids.tobytes()) % ALIGN == 0
