"""Two-sample comparison for regressions: the Mann-Whitney U test and Cliff's delta, in numpy.

Why Mann-Whitney U: latency samples are skewed, heavy-tailed and few (3 connect sessions, a few
dozen frames), so a t-test's normality does not hold and a single outlier would dominate it.
U compares ranks only: no distribution assumed, robust to outliers, exact for small samples.
Cliff's delta (2U / (n1 n2) - 1, from -1 to 1) is its effect size: how often today's sample is
worse than the baseline's, minus how often it is better. scipy is not a dependency; the exact
and asymptotic paths below follow scipy.stats.mannwhitneyu's "auto" method (checked in tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EXACT_MAX_N = 8  # one sample this small and no ties: exact distribution of U (as scipy)
EXACT_MAX_CELLS = 20000  # n1 * n2 beyond this: asymptotic (bounded work)


@dataclass(frozen=True)
class UTest:
    """Result of a one-sided Mann-Whitney U test: is x stochastically greater than y?

    Attributes:
        u: U statistic of x (pairs with x > y, ties counting one half).
        p_value: one-sided p-value (alternative: x greater).
        cliffs_delta: effect size in [-1, 1]; > 0 when x tends to be greater.
        method: "exact" or "asymptotic".
    """

    u: float
    p_value: float
    cliffs_delta: float
    method: str
    n_x: int
    n_y: int


def mann_whitney_greater(x, y) -> UTest:
    """One-sided Mann-Whitney U test that x is stochastically greater than y.

    Raises:
        ValueError: an empty sample or a non-finite value.
    """
    a = np.asarray(list(x), float)
    b = np.asarray(list(y), float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("samples must be finite")
    n1, n2 = a.size, b.size
    both = np.concatenate([a, b])
    ranks = _ranks(both)
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    _, tie_counts = np.unique(both, return_counts=True)
    has_ties = bool(np.any(tie_counts > 1))
    delta = 2.0 * u / (n1 * n2) - 1.0
    if not has_ties and min(n1, n2) <= EXACT_MAX_N and n1 * n2 <= EXACT_MAX_CELLS:
        counts = _u_counts(n1, n2)
        k = int(round(u))
        p = float(counts[k:].sum() / counts.sum())
        return UTest(u, min(1.0, p), delta, "exact", n1, n2)
    n = n1 + n2
    tie_term = float(((tie_counts**3) - tie_counts).sum()) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sigma == 0:
        return UTest(u, 1.0, delta, "asymptotic", n1, n2)
    z = (u - n1 * n2 / 2.0 - 0.5) / sigma  # continuity correction
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    return UTest(u, min(1.0, max(0.0, p)), delta, "asymptotic", n1, n2)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, float)
    sorted_vals = values[order]
    i = 0
    while i < values.size:
        j = i
        while j + 1 < values.size and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


@lru_cache(maxsize=64)
def _u_counts(n1: int, n2: int) -> np.ndarray:
    """How many of the C(n1+n2, n1) orderings give each U = 0..n1*n2 (no ties).

    counts(i, j)[u] = counts(i-1, j)[u-j] (the largest value is from x: it beats all j of y)
                    + counts(i, j-1)[u]   (the largest value is from y).
    """
    prev = [np.ones(1) for _ in range(n2 + 1)]  # i = 0: U = 0 only
    for i in range(1, n1 + 1):
        row = [np.ones(1)]  # j = 0
        for j in range(1, n2 + 1):
            out = np.zeros(i * j + 1)
            left = prev[j]
            out[j : j + left.size] += left
            right = row[j - 1]
            out[: right.size] += right
            row.append(out)
        prev = row
    return prev[n2]
