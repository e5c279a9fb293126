"""Group-sequential boundaries: how small a p-value must be at each look so that looking after
every round of seeds keeps the chance of any false rejection at alpha.

Lan and DeMets' alpha spending (Biometrika 1983) with the Hwang-Shih-DeCani family (Statistics
in Medicine 1990): by information fraction t (seeds so far / the most seeds), at most
alpha * (1 - exp(-gamma t)) / (1 - exp(-gamma)) has been spent. The boundaries are exact for a
normal statistic with independent increments (computed by numerical integration, Armitage,
McPherson and Rowe 1969); for t statistics with an estimated spread, each look's nominal
p-value level is applied to the t-test's own p-value (Jennison and Turnbull, "Group Sequential
Methods", 2000, section 3.8), whose error rate the simulation in docs/ranking.md measures.
"""

import functools
import math

import numpy as np
from scipy import stats

GAMMA = -3.0  # between O'Brien-Fleming-like (-4: little early) and Pocock-like (1: flat)
GRID = 0.01  # step of the integration grid, in standard deviations of the process
SPAN = 12.0  # the grid covers +-SPAN (a boundary never needs more)


def spent(t: float, alpha: float, gamma: float = GAMMA) -> float:
    """Cumulative alpha spent by information fraction t in [0, 1]."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if gamma == 0:
        return alpha * t
    return alpha * (1 - math.exp(-gamma * t)) / (1 - math.exp(-gamma))


def _first_exit(step_sd: float, bound: float) -> float:
    """P(|S_1| >= bound) for S_1 ~ N(0, step_sd^2)."""
    return float(2 * stats.norm.sf(bound / step_sd))


def _exit_mass(density: np.ndarray, grid: np.ndarray, step_sd: float, bound: float) -> float:
    """P(|S_k| >= bound, still running before) given S_{k-1}'s (sub-)density on the grid."""
    outside = stats.norm.sf((bound - grid) / step_sd) + stats.norm.cdf((-bound - grid) / step_sd)
    return float(np.sum(density * outside) * GRID)


@functools.lru_cache(maxsize=256)
def z_bounds(fractions: tuple[float, ...], alpha: float, gamma: float = GAMMA) -> tuple:
    """Two-sided z boundaries c_k at the given increasing information fractions: a standard
    normal process crosses |Z_k| >= c_k first at look k with probability
    spent(t_k) - spent(t_{k-1}). A look that may spend nothing gets an infinite boundary."""
    grid = np.arange(-SPAN, SPAN + GRID / 2, GRID)
    bounds, density, previous_t, previous_spent = [], None, 0.0, 0.0
    for t in fractions:
        step_sd = math.sqrt(t - previous_t)
        target = spent(t, alpha, gamma) - previous_spent
        if density is None:  # first look: S_1 ~ N(0, t_1)
            mass = functools.partial(_first_exit, step_sd)
        else:
            mass = functools.partial(_exit_mass, density, grid, step_sd)
        if target <= 1e-15:
            bound_s = math.inf
        else:
            low, high = 0.0, SPAN
            for _ in range(60):  # bisection on the boundary of S_k = Z_k sqrt(t_k)
                mid = (low + high) / 2
                low, high = (mid, high) if mass(mid) > target else (low, mid)
            bound_s = high
        bounds.append(bound_s / math.sqrt(t))
        # The density of S_k on the continuation region, for the next look.
        if density is None:
            density = stats.norm.pdf(grid / step_sd) / step_sd
        else:
            kernel = stats.norm.pdf(np.arange(-SPAN, SPAN + GRID / 2, GRID) / step_sd) / step_sd
            density = np.convolve(density, kernel, mode="same") * GRID
        density = np.where(np.abs(grid) < bound_s, density, 0.0)
        previous_t, previous_spent = t, previous_spent + (mass(bound_s) if target > 1e-15 else 0)
    return tuple(bounds)


@functools.lru_cache(maxsize=256)
def nominal_levels(fractions: tuple[float, ...], alpha: float, gamma: float = GAMMA) -> tuple:
    """Each look's two-sided nominal p-value level: reject at look k when p_k <= level_k."""
    return tuple(
        0.0 if math.isinf(c) else float(2 * stats.norm.sf(c))
        for c in z_bounds(fractions, alpha, gamma)
    )
