"""Batch inference and batch segment jobs, end to end: a real store, trained models, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InvalidInput, NotFound
from engine.jobs.batch import batch_inference, batch_segment
from engine.jobs.train import train
from engine.recipes import Query, recipe_class
from engine.records import Interaction, Item
from engine.storage.histories import latest_events_of_users

ALS = {"factors": 8, "iterations": 8}


def fill(store, group: str = "shop") -> None:
    """Two taste clusters (even users like a-items, odd users b-items), a catalogue with categories."""
    store.create_dataset_group(group)
    rng = np.random.default_rng(0)
    records: list = []
    for u in range(60):
        prefix = "a" if u % 2 == 0 else "b"
        for k in range(8):
            item = f"{prefix}{rng.integers(0, 15)}"
            kind = "purchase" if k % 4 == 0 else "view"
            records.append(Interaction(f"u{u}", item, kind, 1_700_000_000 + u * 100 + k))
    for n in range(15):
        for prefix, category in (("a", "shoes"), ("b", "hats")):
            records.append(Item(f"{prefix}{n}", {"CATEGORY": category, "COLOUR": "red" if n % 2 else "blue"}))
    store.ingest(group, records)


@pytest.fixture
def shop(sqlite_store, tmp_path):
    fill(sqlite_store)
    return sqlite_store


def trained(store, tmp_path: Path, recipe: str, hyperparameters: dict | None = None) -> str:
    version = train(
        store,
        tmp_path / "artifacts",
        dataset_group="shop",
        recipe=recipe,
        solution=recipe.rsplit("aws-", 1)[-1],
        hyperparameters=hyperparameters,
    )
    return version.id


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_user_personalization_lines_get_what_the_model_answers_in_real_time(shop, tmp_path):
    version = trained(shop, tmp_path, "user-personalization", ALS)
    src = write_lines(
        tmp_path / "users.jsonl",
        '{"userId": "u0"}',
        "",
        '{"userId": "u1"}',
        "{not json",
        '{"itemId": "a1"}',
        '{"userId": "stranger"}',
        '{"userId": "u2", "colour": "red"}',
    )
    report = batch_inference(
        shop, dataset_group="shop", solution_version=version, input_path=src, output_path=tmp_path / "out.jsonl"
    )
    lines = read_lines(tmp_path / "out.jsonl")
    assert report.lines == len(lines) == 6 and report.errors == 3  # the blank line is not a record
    assert [line["input"] for line in lines[:2]] == [{"userId": "u0"}, {"userId": "u1"}]
    assert lines[2] == {"input": "{not json", "error": lines[2]["error"]} and "JSON" in lines[2]["error"]
    assert "userId" in lines[3]["error"] and "colour" in lines[5]["error"]

    # Each line is what the model answers in real time for that shopper: the latest events read
    # from the store, folded in, and the recipe's default exclusions of what they already have.
    model = recipe_class("user-personalization").load(shop.get_solution_version(version).artifact_path)
    for line in (lines[0], lines[1], lines[4]):
        assert line["error"] is None and set(line["output"]) == {"recommendedItems", "scores"}
        assert 0 < len(line["output"]["recommendedItems"]) <= 25
        history = tuple(shop.latest_events("shop", line["input"]["userId"]))
        live = model.recommend(
            Query(line["input"]["userId"], history=history, num_results=25, exclude=model.default_exclusions(history))
        )
        assert line["output"]["recommendedItems"] == list(live.item_ids)
        assert line["output"]["scores"] == pytest.approx(list(live.scores), abs=1e-6)


def test_num_results_and_a_campaigns_own_configuration_apply(shop, tmp_path):
    version = trained(shop, tmp_path, "user-personalization", ALS)
    shop.create_campaign("again", version, {"excludeInteracted": False})
    src = write_lines(tmp_path / "in.jsonl", '{"userId": "u0"}')
    batch_inference(
        shop, dataset_group="shop", campaign="again", input_path=src, output_path=tmp_path / "o.jsonl", num_results=30
    )
    items = read_lines(tmp_path / "o.jsonl")[0]["output"]["recommendedItems"]
    assert len(items) == 30  # the whole catalogue: nothing the shopper saw is left out
    with pytest.raises(InvalidInput, match="numResults"):
        batch_inference(
            shop, dataset_group="shop", campaign="again", input_path=src, output_path=tmp_path / "x", num_results=501
        )


def test_personalized_ranking_reorders_each_lines_item_list(shop, tmp_path):
    version = trained(shop, tmp_path, "arn:aws:personalize:::recipe/aws-personalized-ranking", ALS)
    src = write_lines(
        tmp_path / "rank.jsonl",
        '{"userId": "u1", "itemList": ["a1", "new-item", "b1", "a2", "b2"]}',
        '{"userId": "u1"}',
        '{"userId": "u1", "itemList": []}',
    )
    batch_inference(shop, dataset_group="shop", solution_version=version, input_path=src, output_path=tmp_path / "o")
    ranked, missing, empty = read_lines(tmp_path / "o")
    items, scores = ranked["output"]["recommendedItems"], ranked["output"]["scores"]
    assert sorted(items) == sorted(["a1", "new-item", "b1", "a2", "b2"])
    assert items[-1] == "new-item" and scores[-1] is None
    assert items[0].startswith("b") and scores[:-1] == sorted(scores[:-1], reverse=True)
    assert "itemList" in missing["error"] and "itemList" in empty["error"]


#: Item ids that JSON escapes (quote, backslash, control characters) or writes as they are (non-ASCII).
ODD_IDS = ['say "hi"', "back\\slash", "tab\tnew\nline\x00\x1f\x7f", "é ü 😀 \u2028", '", "', "[1, 2]"]


def test_lines_are_byte_for_byte_what_json_dumps_writes(shop, tmp_path):
    """Lines are spliced from pieces of JSON text for speed; each must be exactly what
    ``json.dumps(line, ensure_ascii=False)`` writes: odd ids escaped, non-ASCII as is, scores as
    float repr, NaN scores (items the model does not know) as null, the input echoed as parsed."""
    ranking = trained(shop, tmp_path, "arn:aws:personalize:::recipe/aws-personalized-ranking", ALS)
    odd = {"userId": "u1", "itemList": ["a1", *ODD_IDS, "b2"]}
    src = write_lines(
        tmp_path / "rank.jsonl",
        json.dumps(odd),
        json.dumps(odd, ensure_ascii=False),
        '{"userId":"u2","itemList":["a1","b1","a2"],   "context": {"k": "\\u00e9"}}',
        '{"userId": "u\\"3"}',
        "{not json é \\",
    )
    batch_inference(shop, dataset_group="shop", solution_version=ranking, input_path=src, output_path=tmp_path / "o")
    personal = trained(shop, tmp_path, "user-personalization", ALS)
    users = write_lines(tmp_path / "users.jsonl", '{"userId": "u4"}', json.dumps({"userId": ODD_IDS[2]}))
    batch_inference(shop, dataset_group="shop", solution_version=personal, input_path=users, output_path=tmp_path / "p")
    written = [*(tmp_path / "o").read_bytes().split(b"\n"), *(tmp_path / "p").read_bytes().split(b"\n")]
    assert written[5] == written[-1] == b""
    lines = [line.decode("utf-8") for line in written if line]
    for line in lines:
        assert line == json.dumps(json.loads(line), ensure_ascii=False)
    first, second, u2, _, not_json, u4, stranger = map(json.loads, lines)
    assert first == second and first["input"] == odd and first["error"] is None
    items, scores = first["output"]["recommendedItems"], first["output"]["scores"]
    assert items[:2] in (["a1", "b2"], ["b2", "a1"]) and items[2:] == ODD_IDS and scores[2:] == [None] * len(ODD_IDS)
    assert all(isinstance(s, float) and s == round(s, 7) for s in scores[:2] + u4["output"]["scores"])
    assert lines[0].endswith(
        '"say \\"hi\\"", "back\\\\slash", "tab\\tnew\\nline\\u0000\\u001f\x7f", "é ü 😀 \u2028", '
        '"\\", \\"", "[1, 2]"], '
        '"scores": [' + ", ".join(map(repr, scores[:2])) + ', null, null, null, null, null, null]}, "error": null}'
    )
    assert u2["input"] == {"userId": "u2", "itemList": ["a1", "b1", "a2"], "context": {"k": "é"}}
    assert lines[3] == (
        '{"input": {"userId": "u\\"3"}, "error": "the line needs \'itemList\', a non-empty list of item ids"}'
    )
    assert not_json["input"] == "{not json é \\" and not_json["error"].startswith("not valid JSON")
    assert len(u4["output"]["recommendedItems"]) == len(u4["output"]["scores"]) == 25
    assert stranger["input"] == {"userId": ODD_IDS[2]} and stranger["output"]["recommendedItems"]


def test_rendered_lines_match_json_dumps_on_any_scores_and_ids(shop, tmp_path):
    """The same pin on the rendering alone, for scores no model here gives: infinities, -0.0,
    tiny and huge values (repr's exponent form), random values across magnitudes, empty lists."""
    from engine.jobs.batch import LineError, _InferenceJob, _load, _rendered, _source
    from engine.recipes import Ranked

    version = trained(shop, tmp_path, "user-personalization", ALS)
    job = _InferenceJob(shop, "shop", _load(_source(shop, "shop", version, None)), 25, None, None, {}, 500)
    inf, nan = float("inf"), float("nan")
    edge = [0.5, nan, 1e-05, -1e-04, 0.0001, -0.0, 0.0, 0.1 + 0.2, 123456.7891234, inf, -inf, -3.0, 1e-7, 4e-8]
    edge += [-4e-8, 2.5e15, 1e300, 9999999.9999999, 12345678.9, 0.12345675, 5e-324, 1.5, -2.25]
    rng = np.random.default_rng(7)
    runs = [edge, [], [0.25], rng.random(25).tolist(), [nan] * 3]
    runs += [(rng.normal(0, 1, 25) * 10.0 ** rng.integers(-9, 12, 25)).tolist() for _ in range(40)]
    for ids in (["a1", "b2", "é", "x y", ""], ["a1", *ODD_IDS]):
        answers = [Ranked(tuple(ids[k % len(ids)] for k in range(len(run))), tuple(run)) for run in runs]
        outputs: list = list(job._outputs(answers))
        outputs.insert(2, "a line's error")
        inputs = [{"userId": f"u{n}"} for n in range(len(outputs))]
        inputs[1] = {"userId": ODD_IDS[0], "context": {"x": "1"}}
        block = [(json.dumps(obj), obj) for obj in inputs]
        block[3] = ("{not json", LineError("not valid JSON"))
        expected, answered = [], iter(zip(answers, runs, strict=True))
        for (raw, obj), out in zip(block, outputs, strict=True):
            shown = raw if isinstance(obj, LineError) else obj
            if isinstance(out, str):
                expected.append(json.dumps({"input": shown, "error": out}, ensure_ascii=False))
                continue
            ranked, run = next(answered)
            scores = [None if s != s else s for s in np.round(np.array(run, dtype=np.float64), 7).tolist()]
            answer = {"recommendedItems": list(ranked.item_ids), "scores": scores}
            expected.append(json.dumps({"input": shown, "output": answer, "error": None}, ensure_ascii=False))
        text, errors, first_errors = _rendered(block, outputs)
        assert text == "\n".join(expected) + "\n" and errors == 1 and first_errors == [(2, "a line's error")]


@pytest.mark.parametrize("recipe", ["sims", "similar-items", "popularity-count"])
def test_related_and_popular_items_lines_carry_no_scores(shop, tmp_path, recipe):
    version = trained(shop, tmp_path, recipe)
    line = '{"itemId": "a1"}' if recipe != "popularity-count" else '{"userId": "u0"}'
    src = write_lines(tmp_path / "in.jsonl", line)
    batch_inference(
        shop, dataset_group="shop", solution_version=version, input_path=src, output_path=tmp_path / "o", num_results=5
    )
    (out,) = read_lines(tmp_path / "o")
    assert out["error"] is None and list(out["output"]) == ["recommendedItems"]
    assert len(out["output"]["recommendedItems"]) == 5 and "a1" not in out["output"]["recommendedItems"]


def test_a_filter_removes_what_it_excludes(shop, tmp_path):
    from engine.serving.filters import create_filter

    version = trained(shop, tmp_path, "user-personalization", ALS)
    create_filter(shop, "shop", "no-hats", 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("hats")')
    src = write_lines(tmp_path / "in.jsonl", '{"userId": "u1"}', '{"userId": "u1", "filterValues": {"X": "\\"y\\""}}')
    batch_inference(
        shop,
        dataset_group="shop",
        solution_version=version,
        input_path=src,
        output_path=tmp_path / "o",
        num_results=10,
        filter_name="no-hats",
    )
    filtered, bad = read_lines(tmp_path / "o")
    assert filtered["output"]["recommendedItems"] and all(
        i.startswith("a") for i in filtered["output"]["recommendedItems"]
    )
    assert bad["error"]
    with pytest.raises(NotFound, match="no-such-filter"):
        batch_inference(
            shop,
            dataset_group="shop",
            solution_version=version,
            input_path=src,
            output_path=tmp_path / "o2",
            filter_name="no-such-filter",
        )
    assert not (tmp_path / "o2").exists()


def test_worker_processes_write_what_one_process_writes(shop, tmp_path):
    """Blocks answered by spawned worker processes (each with its own store connection and model)
    come back in input order, byte for byte what the job writes in one process, with the same
    error count, line numbers in sample errors and progress."""
    from engine.jobs.batch import _worker_count
    from engine.serving.filters import create_filter

    version = trained(shop, tmp_path, "user-personalization", ALS)
    create_filter(shop, "shop", "no-hats", 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("hats")')
    lines = [json.dumps({"userId": f"u{u}"}) for u in range(0, 60, 3)]
    lines[2:2] = ["{not json", "", '{"userId": "stranger"}', '{"itemId": "a1"}']
    lines.append('{"userId": "u5", "filterValues": {"X": "\\"y\\""}}')
    src = write_lines(tmp_path / "in.jsonl", *lines)
    outputs = {}
    for workers in (1, 2):
        progress: list[int] = []
        report = batch_inference(
            shop,
            dataset_group="shop",
            solution_version=version,
            input_path=src,
            output_path=tmp_path / f"out-{workers}.jsonl",
            num_results=5,
            filter_name="no-hats",
            on_progress=progress.append,
            workers=workers,
            block_lines=4,
        )
        outputs[workers] = ((tmp_path / f"out-{workers}.jsonl").read_bytes(), report.errors, report.sample_errors)
        assert report.lines == sum(progress) == len(lines) - 1 == 24 and progress == [4] * 6
    assert _worker_count(shop, 2) == 2 and outputs[2] == outputs[1]
    text, errors, sample = outputs[1]
    assert errors == 3 and sample[0].startswith("line 3: not valid JSON") and sample[1].startswith("line 5:")
    answered = [json.loads(line) for line in text.decode().splitlines()]
    assert answered[0]["output"]["recommendedItems"] and all(
        i.startswith("a") for i in answered[0]["output"]["recommendedItems"]
    )


def test_item_affinity_segments_list_the_users_who_like_the_item(shop, tmp_path):
    version = trained(shop, tmp_path, "item-affinity", ALS)
    src = write_lines(tmp_path / "items.jsonl", '{"itemId": "a3"}', '{"itemId": "b3"}', '{"itemAttributes": "x"}')
    report = batch_segment(
        shop, dataset_group="shop", solution_version=version, input_path=src, output_path=tmp_path, num_results=10
    )
    assert Path(report.output_path) == tmp_path / "items.jsonl.out"  # a folder: Personalize's naming
    a3, b3, wrong = read_lines(tmp_path / "items.jsonl.out")
    assert a3["input"] == {"itemId": "a3"} and a3["error"] is None
    assert len(a3["output"]["usersList"]) == 10
    assert sum(int(u[1:]) % 2 == 0 for u in a3["output"]["usersList"]) >= 9
    assert sum(int(u[1:]) % 2 == 1 for u in b3["output"]["usersList"]) >= 9
    assert "itemAttributes" in wrong["error"]


def test_item_attribute_affinity_segments_answer_attribute_queries(shop, tmp_path):
    version = trained(shop, tmp_path, "item-attribute-affinity", ALS)
    src = write_lines(
        tmp_path / "q.jsonl",
        json.dumps({"itemAttributes": 'ITEMS.CATEGORY = "hats" AND ITEMS.COLOUR = "red"'}),
        json.dumps({"itemAttributes": 'ITEMS.CATEGORY = "socks"'}),
        json.dumps({"itemAttributes": 'ITEMS.CATEGORY IN ("hats")'}),
    )
    batch_segment(shop, dataset_group="shop", solution_version=version, input_path=src, output_path=tmp_path / "o")
    hats, socks, bad = read_lines(tmp_path / "o")
    assert sum(int(u[1:]) % 2 == 1 for u in hats["output"]["usersList"]) >= 20
    assert socks["output"] == {"usersList": []}
    assert "only = is supported" in bad["error"] and "output" not in bad


def test_jobs_refuse_recipes_they_cannot_run(shop, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", '{"userId": "u0"}')
    trending = trained(shop, tmp_path, "trending-now")
    segments = trained(shop, tmp_path, "item-affinity", ALS)
    items = trained(shop, tmp_path, "user-personalization", ALS)
    with pytest.raises(InvalidInput, match="trending-now"):
        batch_inference(shop, dataset_group="shop", solution_version=trending, input_path=src, output_path=tmp_path)
    with pytest.raises(InvalidInput, match="batch-segment"):
        batch_inference(shop, dataset_group="shop", solution_version=segments, input_path=src, output_path=tmp_path)
    with pytest.raises(InvalidInput, match="segments"):
        batch_segment(shop, dataset_group="shop", solution_version=items, input_path=src, output_path=tmp_path)
    from engine.serving.filters import create_filter

    create_filter(shop, "shop", "f", 'EXCLUDE ItemID WHERE Items.CATEGORY IN ("hats")')
    with pytest.raises(InvalidInput, match="user segments need a UserID filter"):
        batch_segment(
            shop, dataset_group="shop", solution_version=segments, input_path=src, output_path=tmp_path, filter_name="f"
        )
    with pytest.raises(NotFound):
        batch_inference(shop, dataset_group="shop", solution_version="sv-nope", input_path=src, output_path=tmp_path)
    with pytest.raises(InvalidInput, match="input file"):
        batch_inference(shop, dataset_group="shop", solution_version=items, input_path=src, output_path=src)
    assert list(tmp_path.glob("*.out")) == [] and list(tmp_path.glob(".*partial*")) == []


def test_many_users_events_are_read_grouped_newest_kept(store):
    store.create_dataset_group("g")
    store.ingest(
        "g",
        [Interaction("u1", f"i{k}", "view", 100.0 + k, event_value=1.5 if k == 2 else None) for k in range(5)]
        + [Interaction("u2", "j", "purchase", 50.0), Interaction("other", "x", "view", 1.0)],
    )
    cols = latest_events_of_users(store, "g", ["u2", "nobody", "u1"], limit=3)
    assert cols.user_ids.tolist() == ["u2", "u1", "u1", "u1"]
    assert cols.item_ids.tolist() == ["j", "i2", "i3", "i4"]
    assert cols.timestamps.tolist() == [50.0, 102.0, 103.0, 104.0]
    assert cols.event_values[1] == 1.5 and np.isnan(cols.event_values[0])
    assert len(latest_events_of_users(store, "g", [])) == 0


def test_an_output_path_ending_in_a_slash_is_a_new_folder(shop, tmp_path):
    version = trained(shop, tmp_path, "popularity-count")
    src = write_lines(tmp_path / "in.jsonl", '{"userId": "u0"}')
    report = batch_inference(
        shop, dataset_group="shop", solution_version=version, input_path=src, output_path=f"{tmp_path}/new/"
    )
    assert (
        Path(report.output_path) == tmp_path / "new" / "in.jsonl.out"
        and len(read_lines(tmp_path / "new" / "in.jsonl.out")) == 1
    )
