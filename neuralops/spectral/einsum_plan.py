"""Pairwise contraction plans for multi-operand einsums, found once and reused.

A factorized spectral weight contracts the kept coefficients with several small tensors (CP
factors, a Tucker core and factors, tensor-train cores). The order of the pairwise products
decides the cost by orders of magnitude, and ``torch.einsum`` without ``opt_einsum`` simply
goes left to right. :func:`plan_contraction` finds the cheapest order by dynamic programming
over operand subsets (exact for the <= 8 operands that occur here) and returns a
:class:`ContractionPlan` that replays it with one two-operand ``torch.einsum`` per step. Callers
cache plans by operand shapes, so no path search ever happens on the hot path.

Axes are named by arbitrary hashable labels (e.g. ``"in"``, ``"k0"``, ``"r1"``); a label shared
by several operands is contracted unless it appears in the output.
"""

from __future__ import annotations

import math
import string
from itertools import combinations
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

from neuralops.errors import ConfigError

Labels = tuple[Hashable, ...]


@dataclass(frozen=True)
class ContractionStep:
    """Contract slots ``left`` and ``right`` with ``equation``; the result (axes ``labels``) goes to a new slot."""

    left: int
    right: int
    equation: str
    labels: Labels


@dataclass(frozen=True)
class ContractionPlan:
    """A fixed order of pairwise contractions.

    Attributes:
        steps: pairwise contractions; inputs occupy slots ``0..n-1``, step ``s`` writes slot ``n+s``.
        macs: multiply-accumulate count of all steps (complex MACs for complex operands).
        written: total number of elements of all intermediates and of the output.
        peak: largest number of elements of a single intermediate or of the output.
    """

    n_inputs: int
    steps: tuple[ContractionStep, ...]
    unary_equation: str | None
    macs: int
    written: int
    peak: int

    def __call__(self, *operands: torch.Tensor) -> torch.Tensor:
        if len(operands) != self.n_inputs:
            raise ValueError(f"contraction plan expects {self.n_inputs} operands, got {len(operands)}")
        if self.unary_equation is not None:
            return torch.einsum(self.unary_equation, operands[0])
        slots = list(operands)
        for step in self.steps:
            slots.append(torch.einsum(step.equation, slots[step.left], slots[step.right]))
            slots[step.left] = slots[step.right] = None  # free inputs of the step early
        return slots[-1]


def plan_contraction(
    inputs: Sequence[Labels],
    output: Labels,
    sizes: dict[Hashable, int],
    allow_intermediate: Callable[[frozenset[int], Labels], bool] | None = None,
) -> ContractionPlan:
    """The pairwise contraction order with the fewest MACs (ties: fewest elements written).

    Args:
        inputs: the axis labels of each operand, in operand order.
        output: labels of the result, in order; each must occur in some input.
        sizes: size of every label.
        allow_intermediate: optional predicate ``(operand subset, result labels) -> bool``;
            intermediates (not the final result) for which it is False are never formed.
    """
    n = len(inputs)
    if n == 0:
        raise ConfigError("a contraction needs at least one operand")
    missing = set(output) - {label for labels in inputs for label in labels}
    if missing:
        raise ConfigError(f"output labels {sorted(map(str, missing))} occur in no operand")
    letter = _einsum_letters(inputs)

    def spec(labels: Labels) -> str:
        return "".join(letter[label] for label in labels)

    if n == 1:
        elements = math.prod(sizes[label] for label in output)
        return ContractionPlan(1, (), f"{spec(inputs[0])}->{spec(output)}", 0, elements, elements)

    full = frozenset(range(n))
    label_sets = [set(labels) for labels in inputs]

    def result_labels(subset: frozenset[int]) -> Labels:
        """Labels of a subset's contraction: those still needed by the output or by other operands."""
        if subset == full:
            return tuple(output)
        inside = set().union(*(label_sets[i] for i in subset))
        outside = set(output).union(*(label_sets[i] for i in full - subset))
        return tuple(sorted(inside & outside, key=str))

    # best[subset] = (macs, written, peak, left subset, right subset, labels)
    best: dict[frozenset[int], tuple[int, int, int, frozenset[int] | None, frozenset[int] | None, Labels]] = {}
    for i in range(n):
        best[frozenset([i])] = (0, 0, 0, None, None, tuple(inputs[i]))
    for size in range(2, n + 1):
        for members in combinations(range(n), size):
            subset = frozenset(members)
            labels = result_labels(subset)
            if subset != full and allow_intermediate is not None and not allow_intermediate(subset, labels):
                continue
            elements = math.prod(sizes[label] for label in labels)
            candidate = None
            for left in _proper_subsets(members):
                right = subset - left
                if min(left) != min(subset) or left not in best or right not in best:
                    continue  # each split once (the left part holds the smallest operand)
                lm, lw, lp, *_, llabels = best[left]
                rm, rw, rp, *_, rlabels = best[right]
                macs = lm + rm + math.prod(sizes[label] for label in set(llabels) | set(rlabels))
                written = lw + rw + elements
                key = (macs, written)
                if candidate is None or key < candidate[:2]:
                    candidate = (macs, written, max(lp, rp, elements), left, right, labels)
            if candidate is not None:
                best[subset] = candidate
    if full not in best:
        raise ConfigError("no contraction order satisfies the intermediate constraint")

    steps: list[ContractionStep] = []

    def emit(subset: frozenset[int]) -> int:
        entry = best[subset]
        if entry[3] is None:
            return next(iter(subset))
        left_slot, right_slot = emit(entry[3]), emit(entry[4])
        equation = f"{spec(best[entry[3]][5])},{spec(best[entry[4]][5])}->{spec(entry[5])}"
        steps.append(ContractionStep(left_slot, right_slot, equation, entry[5]))
        return n + len(steps) - 1

    emit(full)
    macs, written, peak = best[full][:3]
    return ContractionPlan(n, tuple(steps), None, macs, written, peak)


def einsum_in_one_call(operands: Sequence[tuple[torch.Tensor, Labels]], output: Labels) -> torch.Tensor:
    """The contraction of labelled ``operands`` to ``output`` as a single ``torch.einsum``, whose
    pairwise order ``opt_einsum`` (a dependency) picks when the einsum is traced; without it
    torch would contract left to right (for a CP weight an intermediate ~30× the dense
    weight). For code that ``torch.compile`` traces: Dynamo cannot trace
    :func:`plan_contraction`'s subset search."""
    letter = _einsum_letters([labels for _, labels in operands])
    inputs = ",".join("".join(letter[label] for label in labels) for _, labels in operands)
    return torch.einsum(f"{inputs}->{''.join(letter[label] for label in output)}", *[t for t, _ in operands])


def _einsum_letters(inputs: Sequence[Labels]) -> dict[Hashable, str]:
    """One einsum letter per distinct label of ``inputs``; :class:`ConfigError` past 52."""
    labels = sorted({label for labels in inputs for label in labels}, key=str)
    if len(labels) > len(string.ascii_letters):
        raise ConfigError(f"too many distinct axes ({len(labels)}) for an einsum")
    return dict(zip(labels, string.ascii_letters))


def _proper_subsets(members: Sequence[int]):
    """Every non-empty proper subset of ``members`` as a frozenset."""
    count = len(members)
    for mask in range(1, (1 << count) - 1):
        yield frozenset(members[j] for j in range(count) if mask >> j & 1)
