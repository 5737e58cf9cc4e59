"""Tests for objectives.student.mapping: the teacher-to-student layer mapping g."""

from __future__ import annotations

import pytest

from kdtune.objectives.student.mapping import (
    MAPPING_KINDS,
    attention_pairs,
    check_mapping,
    hidden_state_pairs,
    layer_mapping,
)


def test_kinds_listed() -> None:
    assert MAPPING_KINDS == ("uniform", "top", "bottom")


@pytest.mark.parametrize(
    ("n", "m", "expected"),
    [
        (12, 4, [3, 6, 9, 12]),  # TinyBERT 4-layer
        (12, 6, [2, 4, 6, 8, 10, 12]),  # TinyBERT 6-layer
        (12, 12, list(range(1, 13))),
        (12, 1, [12]),
        (1, 1, [1]),
    ],
)
def test_uniform_divisible_is_tinybert(n: int, m: int, expected: list[int]) -> None:
    assert layer_mapping("uniform", n, m) == expected


@pytest.mark.parametrize(
    ("n", "m", "expected"),
    [
        # 12/5 * m = 2.4, 4.8, 7.2, 9.6, 12
        (12, 5, [2, 5, 7, 10, 12]),
        # 12/8 * m = 1.5, 3, 4.5, 6, 7.5, 9, 10.5, 12 (halves round up)
        (12, 8, [2, 3, 5, 6, 8, 9, 11, 12]),
        # 6/4 * m = 1.5, 3, 4.5, 6
        (6, 4, [2, 3, 5, 6]),
        # 12/7 * m = 1.71, 3.43, 5.14, 6.86, 8.57, 10.29, 12
        (12, 7, [2, 3, 5, 7, 9, 10, 12]),
        # 5/3 * m = 1.67, 3.33, 5
        (5, 3, [2, 3, 5]),
    ],
)
def test_uniform_rounded(n: int, m: int, expected: list[int]) -> None:
    assert layer_mapping("uniform", n, m) == expected


def test_uniform_always_valid() -> None:
    for n in range(1, 25):
        for m in range(1, n + 1):
            g = layer_mapping("uniform", n, m)
            assert len(g) == m
            assert g[-1] == n
            assert g[0] >= 1
            assert all(b > a for a, b in zip(g, g[1:], strict=False))


def test_top_and_bottom() -> None:
    assert layer_mapping("top", 12, 4) == [9, 10, 11, 12]
    assert layer_mapping("bottom", 12, 4) == [1, 2, 3, 4]
    assert layer_mapping("top", 3, 3) == [1, 2, 3]


def test_explicit_list_and_string() -> None:
    assert layer_mapping([2, 4, 6], 6, 3) == [2, 4, 6]
    assert layer_mapping((1, 5), 6, 2) == [1, 5]
    assert layer_mapping("2,4,6", 6, 3) == [2, 4, 6]
    assert layer_mapping(" 2, 4 ,6 ", 6, 3) == [2, 4, 6]


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ([2, 4], "3"),  # wrong length: names student_layers
        ([0, 2, 4], "teacher layer 0"),
        ([2, 4, 7], "teacher layer 7"),
        ([2, 2, 4], "strictly increasing, got 2 after 2"),
        ([4, 2, 6], "got 2 after 4"),
        ("2,x,6", "'x'"),
        ("middle", "uniform"),
        ([2.0, 4, 6], "2.0"),
    ],
)
def test_explicit_errors(kind, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        layer_mapping(kind, 6, 3)


@pytest.mark.parametrize(
    ("n", "m", "match"),
    [
        (0, 1, "teacher_layers must be >= 1, got 0"),
        (6, 0, "student_layers must be in 1..6"),
        (6, 7, "got 7"),
        (6.0, 2, "teacher_layers"),
        (6, True, "student_layers"),
    ],
)
def test_depth_errors(n, m, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        layer_mapping("uniform", n, m)


def test_unknown_kind_type() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        layer_mapping(3, 6, 1)  # type: ignore[arg-type]


def test_hidden_state_pairs() -> None:
    assert hidden_state_pairs([3, 6, 9, 12]) == [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)]
    assert hidden_state_pairs([5]) == [(0, 0), (1, 5)]


def test_attention_pairs() -> None:
    assert attention_pairs([3, 6, 9, 12]) == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert attention_pairs([1]) == [(0, 0)]


@pytest.mark.parametrize("bad", [[], [0, 1], [2, 2], [3, 1]])
def test_pairs_reject_bad_mappings(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="mapping"):
        hidden_state_pairs(bad)
    with pytest.raises(ValueError, match="mapping"):
        attention_pairs(bad)


def test_check_mapping_is_the_one_validator() -> None:
    assert check_mapping([2, 4, 6]) == [2, 4, 6]  # depth unknown: ints >= 1, increasing
    assert check_mapping((1, 5), 6) == [1, 5]  # any length 1..N
    assert check_mapping([1, 5], 6, 2) == [1, 5]
    assert layer_mapping("uniform", 12, 4) == check_mapping([3, 6, 9, 12], 12, 4)


@pytest.mark.parametrize(
    ("mapping", "n", "m", "match"),
    [
        ("2,4", 6, None, "list of teacher layer numbers in 1..6"),
        ([], None, None, "at least 1 teacher layers"),
        ([], 4, None, "1..4"),
        ([1, 2, 3, 4, 5], 4, None, "1..4 \\(the teacher's depth\\)"),
        ([0, 2], None, None, "teacher layer 0 .* accepted: ints >= 1"),
        ([2, 7], 6, None, "teacher layer 7 .* accepted: 1..6"),
        ([True, 2], 6, None, "teacher layer True"),
        ([2, 4], 6, 3, "student_layers=3 but got 2 values"),
        ([3, 2], 6, 2, "strictly increasing, got 2 after 3"),
        ([1, 2], 0, None, "teacher_layers must be >= 1"),
        ([1, 2], 6, 7, "student_layers must be in 1..6"),
    ],
)
def test_check_mapping_errors_name_the_accepted_values(mapping, n, m, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_mapping(mapping, n, m)
