"""sims UPDATE from a previous version loaded from disk, as the training job runs it: the loaded
arrays lie in a mapping of the artifact (engine.recipes.array_file), and the update must give the
same model as from the version in memory, leave the previous artifact untouched, and save a model
that loads back the same."""

import hashlib

import pytest

from engine.recipes import sims_update
from engine.recipes.sims import Sims
from tests.engine.recipes.test_sims_update_rows import assert_identical, grown


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("neighbours", [2, 6, 100])
def test_an_update_from_a_loaded_version_is_the_update_from_memory(tmp_path, neighbours):
    previous, data = grown(neighbours=neighbours)
    path = previous.save(tmp_path / "previous.npz")
    before = digest(path)
    loaded = Sims.load(path)

    from_memory, from_disk = Sims(**previous.hyperparameters), Sims(**loaded.hyperparameters)
    assert sims_update.update(from_memory, previous, data)
    assert sims_update.update(from_disk, loaded, data)
    assert_identical(from_disk, from_memory)
    assert digest(path) == before  # nothing written through the mapping

    again = Sims.load(from_disk.save(tmp_path / "updated.npz"))
    assert_identical(again, from_memory)
    assert again.sequence_weight == from_memory.sequence_weight


def test_an_update_saved_over_its_previous_path_keeps_the_loaded_version_whole(tmp_path):
    previous, data = grown()
    path = previous.save(tmp_path / "model.npz")
    loaded = Sims.load(path)
    model = Sims(**loaded.hyperparameters)
    assert sims_update.update(model, loaded, data)
    model.save(path)  # a new file renamed over the one ``loaded`` maps
    assert_identical(loaded, previous)
    assert_identical(Sims.load(path), model)
