"""An always-valid confidence sequence for a paired AUC difference, for evidence that is looked
at again after every batch of labels (the live comparison of a shadow with the champion).

A fixed-sample test checked after each batch promotes an equal challenger far more often than
its ``alpha`` (ten looks at 5 % one-sided: about 12 %, ``bench/decision_quality.py``). Here
the estimate is treated, in information time ``I = 1/se^2``, as a Brownian motion with drift
(the asymptotic view of DeLong's estimate, whose variance shrinks like 1/n); Robbins' normal
mixture over the drift (a N(0, tau^2) mixing distribution) is a nonnegative martingale under
the null, so by Ville's inequality the boundary

    |delta_hat - delta| <= se * sqrt((1 + se^2/tau^2) * 2 * log(sqrt(1 + tau^2/se^2) / alpha))

holds at every look at once with probability at least ``1 - alpha`` (Robbins 1970; Howard,
Ramdas, McAuliffe & Sekhon 2021, eq. (14); as an asymptotic confidence sequence for any
estimator with a central limit theorem: Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas 2024,
"Time-uniform central limit theory and asymptotic confidence sequences", Ann. Statist.).
A challenger is promoted when the lower end clears the rule's bound, so the false-promotion
rate stays at or under ``alpha`` however often the sequence is looked at (two-sided
boundary: conservative for the one-sided decision). ``tau`` (the policy's
``shadow.effect``) places the boundary's tightest point near the information at which a gain
of that size would be found.
"""

from __future__ import annotations

import math

from scipy.stats import norm


def halfwidth(se: float, alpha: float, tau: float) -> float:
    """Half-width of the confidence sequence at a look with standard error ``se``."""
    if not (math.isfinite(se) and se > 0):
        return math.inf if not math.isfinite(se) else 0.0
    r = (tau / se) ** 2
    return se * math.sqrt((1 + 1 / r) * 2 * math.log(math.sqrt(1 + r) / alpha))


def interval(delta: float, se: float, alpha: float, tau: float) -> tuple[float, float]:
    """(lower, upper) of the confidence sequence at this look."""
    h = halfwidth(se, alpha, tau)
    return delta - h, delta + h


def verdict(lower: float, upper: float, bound: float) -> str:
    """``better`` (the lower end clears ``bound``: promote), ``not better`` (the upper end is
    below it: stop waiting) or ``undecided``."""
    if lower > bound:
        return "better"
    if upper < bound:
        return "not better"
    return "undecided"


def power(se: float, effect: float, alpha: float, tau: float, bound: float = 0.0) -> float:
    """The chance this look finds a true gain ``effect`` over ``bound`` (the lower end above
    ``bound``), at standard error ``se``."""
    if not (math.isfinite(se) and se > 0):
        return 0.0 if not math.isfinite(se) else float(effect > bound)
    return float(norm.cdf((effect - bound - halfwidth(se, alpha, tau)) / se))


def pairs_needed(effect: float, se_one: float, alpha: float, tau: float, *,
                 target: float = 0.8, sequential: bool = True) -> int:
    """Labelled pairs at which a true gain ``effect`` is found with probability ``target``,
    when one pair's standard error is ``se_one`` (se at n pairs: se_one / sqrt(n)); the
    sequential boundary, or (``sequential=False``) the one-sided fixed-sample test."""
    if not sequential:
        zsum = norm.ppf(1 - alpha) + norm.ppf(target)
        return math.ceil((zsum * se_one / effect) ** 2)
    lo, hi = 2, 2
    while power(se_one / math.sqrt(hi), effect, alpha, tau) < target:
        lo, hi = hi, hi * 2
        if hi > 1 << 40:
            return -1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power(se_one / math.sqrt(mid), effect, alpha, tau) >= target:
            hi = mid
        else:
            lo = mid
    return hi
