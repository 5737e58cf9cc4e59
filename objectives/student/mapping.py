"""Teacher-to-student layer mapping (TinyBERT's g): :func:`layer_mapping`, :func:`check_mapping`.

Student layer m (1..M) learns from teacher layer g(m) of N >= M; the embedding output (index
0) always learns from the teacher's. Indices follow Hugging Face's ``output_hidden_states``
(``hidden_states[0]`` the embeddings, ``hidden_states[i]`` layer i's output), so g(m) is a
teacher hidden-state index; ``output_attentions`` has no embedding entry, so layer i's
attention is ``attentions[i - 1]`` (pairs: :func:`hidden_state_pairs`, :func:`attention_pairs`).

Kinds (:func:`layer_mapping`): ``uniform``, TinyBERT's g(m) = m*N/M, rounded half-up when M
does not divide N; ``top``, the last M teacher layers N-M+1..N; ``bottom``, the first M,
1..M; an explicit list such as ``[2, 4, 6]`` or the string ``"2,4,6"``.

Why: docs/design.md, "One layer-mapping validator".
"""

from __future__ import annotations

from collections.abc import Sequence

MAPPING_KINDS = ("uniform", "top", "bottom")
"""The named kinds of mapping; an explicit list of teacher layers is the other way."""


def check_mapping(
    mapping: Sequence[int],
    teacher_layers: int | None = None,
    student_layers: int | None = None,
) -> list[int]:
    """Validate a mapping [g(1), ..., g(M)] and return it as a list: THE mapping validator.

    A mapping is a sequence (not a string) of ints, strictly increasing, each a teacher
    layer in 1..N; it holds M values, one per student layer.

    Args:
        mapping: the teacher layer of each student layer.
        teacher_layers: N; ``None`` checks only that values are >= 1 (N unknown).
        student_layers: M, the required length; ``None`` accepts 1..N values.

    Raises:
        ValueError: naming the problem and the accepted values: a bad depth, not a list of
            ints, the wrong length, a value out of 1..N, or values not strictly increasing.
    """
    _check_depths(teacher_layers, student_layers)
    accepted = "ints >= 1" if teacher_layers is None else f"1..{teacher_layers}"
    if isinstance(mapping, str | bytes) or not isinstance(mapping, Sequence):
        raise ValueError(
            f"mapping must be a list of teacher layer numbers in {accepted}, "
            f"got {mapping!r} ({type(mapping).__name__})"
        )
    values = list(mapping)
    if student_layers is not None and len(values) != student_layers:
        raise ValueError(
            f"mapping needs one teacher layer per student layer: student_layers="
            f"{student_layers} but got {len(values)} values {values}"
        )
    if not values or (teacher_layers is not None and len(values) > teacher_layers):
        count = ("at least 1" if teacher_layers is None
                 else f"1..{teacher_layers} (the teacher's depth)")
        raise ValueError(
            f"mapping must hold {count} teacher layers, one per student layer; "
            f"got {len(values)}: {values}"
        )
    for v in values:
        if (not isinstance(v, int) or isinstance(v, bool) or v < 1
                or (teacher_layers is not None and v > teacher_layers)):
            raise ValueError(
                f"teacher layer {v!r} in mapping {values} is out of range; accepted: "
                f"{accepted} (teacher layer numbers)"
            )
    for a, b in zip(values, values[1:], strict=False):
        if b <= a:
            raise ValueError(f"mapping must be strictly increasing, got {b} after {a} in {values}")
    return values


def _check_depths(teacher_layers: int | None, student_layers: int | None) -> None:
    """N >= 1 and, when both are given, 1 <= M <= N (ints, not bools)."""
    if teacher_layers is not None:
        if not isinstance(teacher_layers, int) or isinstance(teacher_layers, bool):
            raise ValueError(
                f"teacher_layers must be an int >= 1, got {teacher_layers!r} "
                f"({type(teacher_layers).__name__})"
            )
        if teacher_layers < 1:
            raise ValueError(f"teacher_layers must be >= 1, got {teacher_layers}")
    if student_layers is not None:
        most = "" if teacher_layers is None else f"..{teacher_layers}"
        if not isinstance(student_layers, int) or isinstance(student_layers, bool):
            raise ValueError(
                f"student_layers must be an int in 1{most}, got {student_layers!r} "
                f"({type(student_layers).__name__})"
            )
        if student_layers < 1 or (teacher_layers is not None and student_layers > teacher_layers):
            raise ValueError(
                f"student_layers must be in 1{most} (teacher_layers), got {student_layers}"
            )


def _uniform(teacher_layers: int, student_layers: int) -> list[int]:
    """g(m) = round_half_up(m*N/M), computed exactly in integers.

    round_half_up(m*N/M) = floor(m*N/M + 1/2) = (2*m*N + M) // (2*M).

    When M divides N this is exactly TinyBERT's m*N/M. Otherwise the result is still strictly
    increasing and ends at N, with no adjustment needed: consecutive values of m*N/M differ
    by N/M >= 1, so their half-up roundings differ by at least 1; and m = M gives N.
    """
    n, m_total = teacher_layers, student_layers
    return [(2 * m * n + m_total) // (2 * m_total) for m in range(1, m_total + 1)]


def _top(teacher_layers: int, student_layers: int) -> list[int]:
    """The last M teacher layers, N-M+1..N."""
    return list(range(teacher_layers - student_layers + 1, teacher_layers + 1))


def _bottom(teacher_layers: int, student_layers: int) -> list[int]:
    """The first M teacher layers, 1..M."""
    return list(range(1, student_layers + 1))


def _parse_explicit(kind: str) -> list[int]:
    """Parse ``"2,4,6"`` (spaces allowed) into ``[2, 4, 6]``."""
    parts = [p.strip() for p in kind.split(",")]
    values = []
    for part in parts:
        try:
            values.append(int(part))
        except ValueError:
            raise ValueError(
                f"kind must be one of {MAPPING_KINDS} or a comma-separated list of teacher "
                f"layers such as '2,4,6', got {kind!r} (bad entry {part!r})"
            ) from None
    return values


def layer_mapping(kind: str | Sequence[int], teacher_layers: int, student_layers: int) -> list[int]:
    """Return [g(1), ..., g(M)]: the teacher layer (1..N) each student layer learns from.

    Args:
        kind: ``"uniform"``, ``"top"``, ``"bottom"``, an explicit sequence of teacher layers
            (one per student layer, each in 1..N, strictly increasing), or such a list
            written as a string, ``"2,4,6"``.
        teacher_layers: N >= 1, the teacher's number of transformer layers.
        student_layers: M with 1 <= M <= N. The search tries depths 1..N-1; M == N is
            allowed so that an explicit copy of the teacher's depth can be expressed.

    Rules (N = teacher_layers, M = student_layers):

    * uniform: g(m) = m*N/M when M divides N (TinyBERT). Otherwise
      g(m) = round_half_up(m*N/M) = floor(m*N/M + 1/2). This is strictly increasing (steps
      of N/M >= 1 never round to the same integer) and g(M) = N always.
      Example: N=12, M=5 gives 12/5*m = 2.4, 4.8, 7.2, 9.6, 12 -> [2, 5, 7, 10, 12].
    * top: [N-M+1, ..., N]. bottom: [1, ..., M].

    Returns:
        A list of M ints in 1..N, strictly increasing. Teacher hidden-state index g(m).

    Raises:
        ValueError: a bad depth, an unknown kind, or an explicit list of the wrong length,
            with a value out of 1..N, or not strictly increasing.
    """
    _check_depths(teacher_layers, student_layers)
    n, m = teacher_layers, student_layers
    if isinstance(kind, str):
        name = kind.strip()
        named = {"uniform": _uniform, "top": _top, "bottom": _bottom}.get(name)
        values = named(n, m) if named is not None else _parse_explicit(name)
    elif isinstance(kind, Sequence):
        values = kind
    else:
        raise ValueError(
            f"kind must be one of {MAPPING_KINDS}, a sequence of ints or a string like "
            f"'2,4,6', got {kind!r} ({type(kind).__name__})"
        )
    return check_mapping(values, n, m)


def hidden_state_pairs(mapping: Sequence[int]) -> list[tuple[int, int]]:
    """Pair student and teacher hidden-state indices, embeddings included.

    For a mapping [g(1), ..., g(M)] return [(0, 0), (1, g(1)), ..., (M, g(M))]: tuples of
    (student ``hidden_states`` index, teacher ``hidden_states`` index). Index 0 is the
    embedding output, so the first pair is the embedding match (M + 1 pairs in all).

    Example: [3, 6, 9, 12] -> [(0, 0), (1, 3), (2, 6), (3, 9), (4, 12)].
    """
    values = check_mapping(mapping)
    return [(0, 0)] + [(m, g) for m, g in enumerate(values, start=1)]


def attention_pairs(mapping: Sequence[int]) -> list[tuple[int, int]]:
    """Pair student and teacher ``attentions`` indices (0-based, one entry per layer).

    For a mapping [g(1), ..., g(M)] return [(0, g(1) - 1), ..., (M - 1, g(M) - 1)]:
    tuples of (student ``attentions`` index, teacher ``attentions`` index). There is no
    embedding entry (M pairs in all).

    Example: [3, 6, 9, 12] -> [(0, 2), (1, 5), (2, 8), (3, 11)].
    """
    values = check_mapping(mapping)
    return [(m - 1, g - 1) for m, g in enumerate(values, start=1)]
