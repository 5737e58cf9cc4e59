"""Distillation losses (TinyBERT's rules as named, tested functions) and their registry.

Prediction losses work on logits (B, K): B examples, K classes; intermediate losses on hidden
states (B, L, H) and attention matrices (B, heads, L, L), L the sequence length. Every loss
returns a scalar tensor (0-dim) that keeps the autograd graph; teacher tensors are used as given.
:func:`intermediate_losses` sums them over the mapped layers of one batch.
:func:`get_loss` looks losses up by name in :data:`LOSSES`; :func:`combine_losses` gives
``L = alpha * L_soft + (1 - alpha) * L_hard + beta * L_intermediate``.
Why: docs/design.md, "Alpha weights the soft term", "Loss inputs and registry".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Projection = Callable[[torch.Tensor], torch.Tensor]

ATTENTION_MASK_THRESHOLD = -100.0
"""Attention entries at or below this value are masked positions (TinyBERT: ``<= -1e2``)."""


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.dim() != 2:
        raise ValueError(
            f"student_logits must have shape (B, K), got shape {tuple(student_logits.shape)}"
        )
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits must have the shape of student_logits "
            f"{tuple(student_logits.shape)}, got {tuple(teacher_logits.shape)}"
        )


def _log_softmaxes(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs -> (log softmax(z_S/t), log softmax(z_T/t)), each (B, K)."""
    _check_logits(student_logits, teacher_logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return (F.log_softmax(student_logits / temperature, dim=-1),
            F.log_softmax(teacher_logits / temperature, dim=-1))


def soft_cross_entropy(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    t2_scaling: bool = False,
) -> torch.Tensor:
    """TinyBERT's prediction loss: cross-entropy of the student against the teacher's softmax.

    L = (1/B) * sum_i [ -sum_k softmax(z_T/t)[i,k] * log_softmax(z_S/t)[i,k] ]

    multiplied by t^2 when ``t2_scaling`` (Hinton et al.: keeps gradient magnitudes
    comparable across temperatures, since the gradient of the unscaled loss shrinks as 1/t^2).

    It equals KL(p_T || p_S) + H(p_T). The teacher's entropy H(p_T) does not depend on the
    student, so the gradients with respect to the student are exactly those of
    :func:`kl_divergence`; only the value differs (it is >= H(p_T), not >= 0).

    Args:
        student_logits: (B, K) student logits z_S.
        teacher_logits: (B, K) teacher logits z_T.
        temperature: t > 0.
        t2_scaling: multiply the loss by t^2.

    Returns:
        A scalar tensor in nats per example (mean over the batch), >= 0.
    """
    log_p_student, log_p_teacher = _log_softmaxes(student_logits, teacher_logits, temperature)
    loss = -(log_p_teacher.exp() * log_p_student).sum(dim=-1).mean()
    return loss * temperature**2 if t2_scaling else loss


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  temperature: float = 1.0, t2_scaling: bool = False) -> torch.Tensor:
    """Batch-mean KL divergence of the student's softmax from the teacher's.

    L = (1/B) * sum_i sum_k p_T[i,k] * (log p_T[i,k] - log p_S[i,k]),
    with p_T = softmax(z_T/t) and p_S = softmax(z_S/t); multiplied by t^2 when ``t2_scaling``.
    Arguments as for :func:`soft_cross_entropy`. Returns a scalar tensor in nats per example,
    >= 0 (0 when the two softmaxes agree).
    """
    log_p_student, log_p_teacher = _log_softmaxes(student_logits, teacher_logits, temperature)
    loss = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return loss * temperature**2 if t2_scaling else loss


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the student's and the teacher's logits (Ba & Caruana 2014;
    Kim et al. 2021 find it keeps the teacher's confidences better than a softened KL).

    L = (1/(B*K)) * sum_i sum_k (z_S[i,k] - z_T[i,k])^2

    No temperature: logits are matched as they are, so the student's probabilities at t = 1
    (the ones sigma reads) are pulled towards the teacher's directly. Returns a scalar >= 0.
    """
    _check_logits(student_logits, teacher_logits)
    return F.mse_loss(student_logits, teacher_logits.to(student_logits.dtype))


def hard_cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Ordinary cross-entropy with the gold labels, over the labelled rows only.

    L = (1/|B_l|) * sum_{i in B_l} -log_softmax(z_S)[i, y_i], B_l = {i : y_i >= 0}

    Rows labelled -1 (unlabelled or augmented transfer text) are skipped; a batch without a
    labelled row gives exactly 0 (still attached to the graph).

    Args:
        student_logits: (B, K) student logits z_S.
        labels: (B,) integer class indices in 0..K-1, or -1 for no label.

    Returns:
        A scalar tensor in nats per labelled example, >= 0.
    """
    if student_logits.dim() != 2:
        raise ValueError(
            f"student_logits must have shape (B, K), got shape {tuple(student_logits.shape)}"
        )
    if labels.shape != student_logits.shape[:1]:
        raise ValueError(
            f"labels must have shape ({student_logits.shape[0]},) to match student_logits, "
            f"got {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if bool((labels < 0).all()):
        return student_logits.sum() * 0.0
    return F.cross_entropy(student_logits, labels, ignore_index=-1)


def hidden_mse(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    projection: Projection | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """TinyBERT's hidden-state loss: MSE between the (projected) student and teacher states.

    L = mean over (b, l, h) of (W_h(H_S)[b,l,h] - H_T[b,l,h])^2

    Without ``mask`` this is TinyBERT's plain mean over all B*L*H_T elements, padding
    positions included. With ``mask`` (1 = real token, 0 = padding) only real tokens count:

    L = sum_{b,l,h} mask[b,l] * (W_h(H_S) - H_T)^2 / (H_T * sum_{b,l} mask[b,l])

    Args:
        student_hidden: (B, L, H_S) student hidden states.
        teacher_hidden: (B, L, H_T) teacher hidden states.
        projection: the learned W_h, a module or callable mapping (..., H_S) -> (..., H_T),
            e.g. ``nn.Linear(H_S, H_T)``. Applied whenever given; required when H_S != H_T.
        mask: optional (B, L) attention mask (0/1 or bool).

    Returns:
        A scalar tensor in squared hidden-state units, >= 0.
    """
    if student_hidden.dim() != 3:
        raise ValueError(
            f"student_hidden must have shape (B, L, H_S), got {tuple(student_hidden.shape)}"
        )
    if teacher_hidden.dim() != 3 or teacher_hidden.shape[:2] != student_hidden.shape[:2]:
        raise ValueError(
            f"teacher_hidden must have shape (B, L, H_T) with (B, L) = "
            f"{tuple(student_hidden.shape[:2])} as in student_hidden, "
            f"got {tuple(teacher_hidden.shape)}"
        )
    width_s, width_t = student_hidden.shape[-1], teacher_hidden.shape[-1]
    if projection is None:
        if width_s != width_t:
            raise ValueError(
                f"projection is None but the widths differ (student {width_s}, teacher "
                f"{width_t}); pass a projection such as nn.Linear({width_s}, {width_t})"
            )
        projected = student_hidden
    else:
        projected = projection(student_hidden)
        if projected.shape != teacher_hidden.shape:
            raise ValueError(
                f"projection must map student_hidden to the teacher's shape "
                f"{tuple(teacher_hidden.shape)}, got {tuple(projected.shape)}"
            )
    squared = (projected - teacher_hidden) ** 2
    if mask is None:
        return squared.mean()
    if mask.shape != student_hidden.shape[:2]:
        raise ValueError(
            f"mask must have shape (B, L) = {tuple(student_hidden.shape[:2])}, "
            f"got {tuple(mask.shape)}"
        )
    weights = mask.to(squared.dtype)
    n_tokens = weights.sum()
    if n_tokens.item() == 0:
        raise ValueError("mask selects no tokens (all zeros); accepted: at least one 1")
    return (squared * weights.unsqueeze(-1)).sum() / (n_tokens * width_t)


def embedding_mse(
    student_embeddings: torch.Tensor,
    teacher_embeddings: torch.Tensor,
    projection: Projection | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """TinyBERT's embedding loss: :func:`hidden_mse` applied to the embedding outputs.

    L = mean of (W_e(E_S) - E_T)^2 over (B, L, H_T), with E = ``hidden_states[0]``;
    the same shapes, projection and mask rules as :func:`hidden_mse`.

    Returns:
        A scalar tensor in squared hidden-state units, >= 0.
    """
    return hidden_mse(student_embeddings, teacher_embeddings, projection=projection, mask=mask)


def attention_mse(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """TinyBERT's attention loss: MSE between attention matrices, masked entries zeroed.

    A' = where(A <= -100, 0, A) for both student and teacher, then
    L = mean over (b, head, i, j) of (A'_S - A'_T)^2.

    TinyBERT applies this to raw attention scores (before softmax), where masked positions
    carry a large negative additive mask; zeroing them keeps the mask out of the loss.
    Note that Hugging Face's eager attention returns *probabilities* (after softmax) in
    ``output_attentions``, not scores; on probabilities (all in [0, 1]) the masking rule
    changes nothing. This function works on whatever matrices it is given; the caller
    decides whether to pass scores or probabilities.

    Args:
        student_scores: (B, heads, L, L) student attention matrices of one layer.
        teacher_scores: (B, heads, L, L) teacher attention matrices; same shape, so the
            number of heads must match.

    Returns:
        A scalar tensor in squared score units (squared probabilities when given
        probabilities, then in [0, 1]), >= 0.
    """
    if student_scores.dim() != 4:
        raise ValueError(
            f"student_scores must have shape (B, heads, L, L), got {tuple(student_scores.shape)}"
        )
    if teacher_scores.dim() != 4:
        raise ValueError(
            f"teacher_scores must have shape (B, heads, L, L), got {tuple(teacher_scores.shape)}"
        )
    if student_scores.shape[1] != teacher_scores.shape[1]:
        raise ValueError(
            f"attention heads must match: student has {student_scores.shape[1]}, teacher has "
            f"{teacher_scores.shape[1]}; attention_mse needs equal head counts"
        )
    if student_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"teacher_scores must have the shape of student_scores "
            f"{tuple(student_scores.shape)}, got {tuple(teacher_scores.shape)}"
        )
    student = torch.where(
        student_scores <= ATTENTION_MASK_THRESHOLD,
        torch.zeros_like(student_scores),
        student_scores,
    )
    teacher = torch.where(
        teacher_scores <= ATTENTION_MASK_THRESHOLD,
        torch.zeros_like(teacher_scores),
        teacher_scores,
    )
    return F.mse_loss(student, teacher)


def intermediate_losses(names: Sequence[str], s_out, s_scores, t: dict, mask: torch.Tensor,
                        hidden_pairs: Sequence[tuple[int, int]],
                        attention_pairs: Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
    """TinyBERT's embedding, hidden-state and attention MSEs of one batch, those in ``names``,
    over the mapped (student, teacher) layer pairs.

    ``s_out``: the student's output (``projected_hidden_states``, ``logits``); ``s_scores``: its
    captured pre-softmax attention scores; ``t``: the teacher's outputs for the batch
    (``hidden``, ``attentions``); ``mask`` (B, L): the attention mask.
    """
    out: dict[str, torch.Tensor] = {}
    hidden = s_out.projected_hidden_states  # W_h applied already when widths differ
    if "embedding" in names:
        out["embedding"] = embedding_mse(hidden[0], t["hidden"][0], mask=mask)
    if "hidden" in names:
        out["hidden"] = torch.stack([hidden_mse(hidden[s], t["hidden"][ti], mask=mask)
                                     for s, ti in hidden_pairs if s > 0]).sum()
    if "attention" in names:
        m = mask.to(s_out.logits.dtype)
        square = m[:, None, :, None] * m[:, None, None, :]
        out["attention"] = torch.stack([
            attention_mse(s_scores[s] * square, t["attentions"][ti])
            for s, ti in attention_pairs]).sum()
    return out


LossTerm = torch.Tensor | float | None


def combine_losses(
    soft: LossTerm,
    hard: LossTerm,
    intermediate: LossTerm,
    alpha: float,
    beta: float,
) -> torch.Tensor:
    """The total distillation loss, kdtune's alpha convention.

    L = alpha * L_soft + (1 - alpha) * L_hard + beta * L_intermediate

    alpha weights the distillation (soft) term: alpha = 1 is pure distillation, alpha = 0
    pure supervised training. (torchdistill's alpha weights the hard term instead.)

    A term whose weight is 0 is left out, so it may be passed as ``None`` (not computed):
    ``hard`` when alpha = 1, ``soft`` when alpha = 0, ``intermediate`` when beta = 0.

    Args:
        soft: scalar soft (prediction) loss, e.g. from :func:`soft_cross_entropy`.
        hard: scalar hard-label loss, e.g. from :func:`hard_cross_entropy`.
        intermediate: scalar sum of intermediate losses (hidden, embedding, attention).
        alpha: weight of the soft term, in [0, 1].
        beta: weight of the intermediate term, >= 0.

    Returns:
        A scalar tensor on the scale of the inputs.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (weight of the soft term), got {alpha}")
    if not 0.0 <= beta < float("inf"):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    terms = [("soft", soft, alpha), ("hard", hard, 1.0 - alpha)]
    terms.append(("intermediate", intermediate, beta))
    weighted = []
    for name, value, weight in terms:
        if weight == 0:
            continue
        if value is None:
            raise ValueError(f"{name} is None but its weight is {weight}; pass its loss")
        weighted.append(torch.as_tensor(value) * weight)
    # alpha and 1 - alpha are never both 0, so there is always at least one term.
    return sum(weighted[1:], weighted[0])


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "soft_cross_entropy": soft_cross_entropy,
    "kl_divergence": kl_divergence,
    "logit_mse": logit_mse,
    "hard_cross_entropy": hard_cross_entropy,
    "hidden_mse": hidden_mse,
    "embedding_mse": embedding_mse,
    "attention_mse": attention_mse,
}
"""Every loss function by name (:func:`get_loss` looks one up)."""


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """Return the loss function registered under ``name`` in :data:`LOSSES`."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; accepted: {sorted(LOSSES)}") from None
