"""Tests for data.dataset: loading, splitting, errors, tokenising (the polarity corpus:
test_polarity.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from kdtune.objectives.data.dataset import DataConfig, Splits, check_labels_match, load_splits
from kdtune.objectives.data.tokens import tokenize

REPO = Path(__file__).resolve().parents[2]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


def _rows(n: int, labels: list, pair: bool = False) -> list[dict]:
    """``n`` distinct rows cycling through ``labels``."""
    rows = []
    for i in range(n):
        row = {
            "sentence": f"row {i} {WORDS[i % len(WORDS)]} " * (1 + i % 3),
            "y": labels[i % len(labels)],
        }
        if pair:
            row["hypothesis"] = f"second part {i} {WORDS[(i * 3) % len(WORDS)]}"
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cfg(source: Path | str, **kw) -> DataConfig:
    kw.setdefault("text_columns", ("sentence",))
    kw.setdefault("label_column", "y")
    return DataConfig(source=str(source), **kw)


def _all_texts(splits: Splits, split: str) -> list[str]:
    ds = splits.split(split)
    if splits.is_pair:
        return [f"{a}|{b}" for a, b in zip(ds["text"], ds["text_pair"], strict=True)]
    return list(ds["text"])


# --------------------------------------------------------------------------- loading


def test_csv_string_labels_sorted_and_stratified(tmp_path):
    # 60 "pos" and 30 "neg": string labels get ids in sorted order (neg=0, pos=1).
    rows = _rows(90, ["pos", "pos", "neg"])
    splits = load_splits(_cfg(_write_csv(tmp_path / "d.csv", rows)))
    assert splits.label_names == ("neg", "pos")
    assert splits.num_labels == 2 and not splits.is_pair
    assert splits.sizes() == {"train": 72, "eval": 9, "test": 9}
    assert set(splits.train.column_names) == {"text", "label"}
    for name in ("train", "eval", "test"):
        counts = Counter(splits.split(name)["label"])
        assert counts[1] == 2 * counts[0]  # the 2:1 ratio survives in every split
    by_text = {r["sentence"]: r["y"] for r in rows}
    for name in ("train", "eval", "test"):
        ds = splits.split(name)
        assert all(
            splits.label_names[lab] == by_text[t]
            for t, lab in zip(ds["text"], ds["label"], strict=True)
        )
    texts = [set(_all_texts(splits, n)) for n in ("train", "eval", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(map(len, texts)) == 90


def test_jsonl_pair_with_int_labels(tmp_path):
    rows = _rows(30, [0, 1, 2], pair=True)
    cfg = _cfg(_write_jsonl(tmp_path / "d.jsonl", rows), text_columns=("sentence", "hypothesis"))
    splits = load_splits(cfg)
    assert splits.is_pair
    assert set(splits.train.column_names) == {"text", "text_pair", "label"}
    assert splits.label_names == ("0", "1", "2")
    assert splits.sizes() == {"train": 24, "eval": 3, "test": 3}
    assert Counter(splits.test["label"]) == {0: 1, 1: 1, 2: 1}
    first = splits.train[0]
    original = next(r for r in rows if r["sentence"] == first["text"])
    assert first["text_pair"] == original["hypothesis"] and first["label"] == original["y"]


def test_json_array_file(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_rows(20, ["b", "a"])), encoding="utf-8")
    splits = load_splits(_cfg(path))
    assert splits.label_names == ("a", "b")
    assert splits.sizes() == {"train": 16, "eval": 2, "test": 2}


def test_parquet_keeps_classlabel_names(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    rows = _rows(40, [0, 1])
    ds = Dataset.from_dict(
        {"sentence": [r["sentence"] for r in rows], "y": [r["y"] for r in rows]},
        features=Features({"sentence": Value("string"), "y": ClassLabel(names=["bad", "good"])}),
    )
    ds.to_parquet(tmp_path / "d.parquet")
    splits = load_splits(_cfg(tmp_path / "d.parquet"))
    assert splits.label_names == ("bad", "good")
    assert splits.train.features["label"].names == ["bad", "good"]


def test_directory_with_split_files_uses_them(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    _write_csv(data / "train.csv", _rows(40, ["x", "y"]))
    _write_csv(data / "validation.csv", _rows(10, ["x", "y"]))
    test_rows = [{**r, "sentence": "test " + r["sentence"]} for r in _rows(8, ["x", "y"])]
    _write_csv(data / "test.csv", test_rows)
    splits = load_splits(_cfg(data))
    assert splits.sizes() == {"train": 40, "eval": 10, "test": 8}
    assert all(t.startswith("test ") for t in splits.test["text"])
    # Sizes take stratified subsets of the given splits.
    sub = load_splits(_cfg(data, train_size=20, eval_size=4, test_size=6))
    assert sub.sizes() == {"train": 20, "eval": 4, "test": 6}
    assert Counter(sub.eval["label"]) == {0: 2, 1: 2}
    assert set(sub.train["text"]) <= set(splits.train["text"])


def test_directory_without_test_split_carves_it_from_train(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    _write_csv(data / "train.csv", _rows(50, ["x", "y"]))
    _write_csv(data / "validation.csv", _rows(12, ["x", "y"]))
    splits = load_splits(_cfg(data))
    assert splits.sizes() == {"train": 45, "eval": 12, "test": 5}
    assert not set(splits.train["text"]) & set(splits.test["text"])


def test_directory_of_unsplit_files_is_one_dataset(tmp_path):
    data = tmp_path / "ds"
    data.mkdir()
    rows = _rows(40, ["x", "y"])
    _write_csv(data / "part1.csv", rows[:20])
    _write_csv(data / "part2.csv", rows[20:])
    assert load_splits(_cfg(data)).sizes() == {"train": 32, "eval": 4, "test": 4}


def test_sizes_take_stratified_subsets_and_keep_test_fixed(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows(200, ["p", "q", "q", "q"]))
    full = load_splits(_cfg(path))
    small = load_splits(_cfg(path, train_size=40))
    assert small.sizes() == {"train": 40, "eval": 20, "test": 20}
    assert Counter(small.train["label"]) == {0: 10, 1: 30}
    # Changing train_size changes neither the test nor the evaluation split.
    assert small.fingerprint("test") == full.fingerprint("test")
    assert small.fingerprint("eval") == full.fingerprint("eval")
    assert set(small.train["text"]) <= set(full.train["text"])
    sized = load_splits(_cfg(path, train_size=100, eval_size=50, test_size=50))
    assert sized.sizes() == {"train": 100, "eval": 50, "test": 50}


def test_same_seed_same_splits_across_processes(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows(120, ["a", "b", "c"]))
    cfg = _cfg(path, seed=7)
    here = load_splits(cfg)
    again = load_splits(cfg)
    assert list(here.train["text"]) == list(again.train["text"])
    fingerprints = {n: here.fingerprint(n) for n in ("train", "eval", "test")}
    assert fingerprints == {n: again.fingerprint(n) for n in ("train", "eval", "test")}
    code = (
        "import json, sys; from kdtune.objectives.data.dataset import DataConfig, load_splits; "
        "s = load_splits(DataConfig.model_validate_json(sys.argv[1])); "
        "print(json.dumps({n: s.fingerprint(n) for n in ('train', 'eval', 'test')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, cfg.model_dump_json()],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == fingerprints
    other = load_splits(_cfg(path, seed=8))
    assert other.fingerprint("test") != fingerprints["test"]


def test_fingerprint_changes_with_content(tmp_path):
    rows = _rows(40, ["a", "b"])
    one = load_splits(_cfg(_write_csv(tmp_path / "one.csv", rows)))
    rows[0]["sentence"] = "something else entirely"
    two = load_splits(_cfg(_write_csv(tmp_path / "two.csv", rows)))
    changed = [n for n in ("train", "eval", "test") if one.fingerprint(n) != two.fingerprint(n)]
    assert len(changed) == 1
    with pytest.raises(ValueError, match="split must be one of"):
        one.fingerprint("validation")


# --------------------------------------------------------------------------- bad data


def test_missing_column_names_it_and_lists_available(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows(20, ["a", "b"]))
    with pytest.raises(ValueError) as err:
        load_splits(_cfg(path, text_columns=("review",)))
    msg = str(err.value)
    assert "'review'" in msg and "available columns: sentence, y" in msg and "\n" not in msg
    with pytest.raises(ValueError, match="'label' not found.*available columns: sentence, y"):
        load_splits(_cfg(path, label_column="label"))


def test_data_problems_are_data_errors(tmp_path):
    """Every data problem is a DataError (CLI exit 2), still a ValueError for callers."""
    from kdtune.errors import DataError, UsageError

    path = _write_csv(tmp_path / "d.csv", _rows(20, ["pos"]))
    with pytest.raises(DataError, match="only one class"):
        load_splits(_cfg(path))
    with pytest.raises(DataError, match="not found"):
        load_splits(_cfg(path, label_column="label"))
    with pytest.raises(DataError, match="no such file"):
        load_splits(DataConfig(source=str(tmp_path / "missing.csv")))
    splits = load_splits(_cfg(_write_csv(tmp_path / "e.csv", _rows(20, ["a", "b"]))))
    with pytest.raises(DataError, match="do not match"):
        check_labels_match(splits, ["x", "y"])
    with pytest.raises(UsageError, match="split must be one of"):
        splits.split("validation")
    assert issubclass(DataError, ValueError)


def test_only_one_class(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows(20, ["pos"]))
    with pytest.raises(ValueError, match=r"only one class \('pos'\).*need at least two"):
        load_splits(_cfg(path))


def test_empty_text_reports_count_and_first_index(tmp_path):
    rows = _rows(20, ["a", "b"])
    rows[5]["sentence"] = "   "
    rows[9]["sentence"] = ""
    with pytest.raises(ValueError) as err:
        load_splits(_cfg(_write_csv(tmp_path / "d.csv", rows)))
    msg = str(err.value)
    assert "2 of 20 rows have empty text in column 'sentence'" in msg
    assert "first at index 5" in msg and "\n" not in msg


def test_missing_and_negative_labels(tmp_path):
    rows = _rows(20, [0, 1])
    rows[3]["y"] = None
    with pytest.raises(ValueError, match=r"1 of 20 rows have no label .*first at index 3"):
        load_splits(_cfg(_write_jsonl(tmp_path / "a.jsonl", rows)))
    rows[3]["y"] = -1
    with pytest.raises(ValueError, match="negative labels"):
        load_splits(_cfg(_write_jsonl(tmp_path / "b.jsonl", rows)))
    rows[3]["y"] = 0.5
    with pytest.raises(ValueError, match="non-integer"):
        load_splits(_cfg(_write_jsonl(tmp_path / "c.jsonl", rows)))


def test_sizes_larger_than_available(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows(50, ["a", "b"]))
    with pytest.raises(ValueError, match=r"train 46 \+ test 5 \+ eval 5.*50 rows"):
        load_splits(_cfg(path, train_size=46))
    with pytest.raises(ValueError, match="50 rows"):
        load_splits(_cfg(path, eval_size=30, test_size=30))
    data = tmp_path / "ds"
    data.mkdir()
    _write_csv(data / "train.csv", _rows(30, ["a", "b"]))
    _write_csv(data / "validation.csv", _rows(6, ["a", "b"]))
    with pytest.raises(ValueError, match=r"eval_size=10 is larger than the 6 rows .*'validation'"):
        load_splits(_cfg(data, eval_size=10))


def test_label_mismatch_with_teacher(tmp_path):
    splits = load_splits(_cfg(_write_csv(tmp_path / "d.csv", _rows(20, ["neg", "pos"]))))
    check_labels_match(splits, ["neg", "pos"])
    check_labels_match(splits, {1: "pos", 0: "neg"})  # a config's id2label
    with pytest.raises(ValueError, match=r"data labels \['neg', 'pos'\] do not match .*different"):
        check_labels_match(splits, ["pos", "neg"])
    with pytest.raises(ValueError, match="2 classes in the data, 3 in the teacher"):
        check_labels_match(splits, ["a", "b", "c"])


def test_unreadable_sources(tmp_path):
    with pytest.raises(ValueError, match="no such file or directory"):
        load_splits(DataConfig(source=str(tmp_path / "missing.csv")))
    (tmp_path / "d.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"unsupported file type '.txt'"):
        load_splits(DataConfig(source=str(tmp_path / "d.txt")))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="could not read data source"):
        load_splits(DataConfig(source=str(tmp_path / "bad.jsonl")))


def test_unreachable_hub_dataset_is_one_line():
    with pytest.raises(ValueError) as err:
        load_splits(DataConfig(source="kdtune-tests/no-such-dataset", config_name="x"))
    msg = str(err.value)
    assert msg.startswith("could not load dataset 'kdtune-tests/no-such-dataset' (config 'x')")
    assert "\n" not in msg


def test_config_is_strict_and_frozen():
    with pytest.raises(ValidationError, match="text_colums"):
        DataConfig(text_colums=("a",))
    with pytest.raises(ValidationError, match="1 column .* or 2"):
        DataConfig(text_columns=("a", "b", "c"))
    with pytest.raises(ValidationError, match="also a text column"):
        DataConfig(text_columns=("label",))
    with pytest.raises(ValidationError):
        DataConfig(train_size=0)
    with pytest.raises(ValidationError):
        DataConfig().seed = 3


# --------------------------------------------------------------------------- tokenising


def test_tokenize_without_padding(tmp_path, minilm_path):
    from transformers import AutoTokenizer, DataCollatorWithPadding

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    rows = _rows(30, ["a", "b"], pair=True)
    cfg = _cfg(_write_csv(tmp_path / "d.csv", rows), text_columns=("sentence", "hypothesis"))
    encoded = tokenize(load_splits(cfg), tok, max_length=12)
    assert set(encoded) == {"train", "eval", "test"}
    train = encoded["train"]
    assert set(train.column_names) == {"input_ids", "attention_mask", "token_type_ids", "label"}
    lengths = {len(ids) for ids in train["input_ids"]}
    assert len(lengths) > 1 and max(lengths) <= 12  # truncated, not padded
    assert any(1 in types for types in train["token_type_ids"])  # second segment present
    batch = DataCollatorWithPadding(tok)([train[i] for i in range(8)])
    assert batch["input_ids"].shape[0] == 8 and batch["labels"].shape == (8,)
    with pytest.raises(ValueError, match="no 'text' column"):
        tokenize(train, tok, 12)
