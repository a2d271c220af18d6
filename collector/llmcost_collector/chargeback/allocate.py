"""Exact splits of an integer amount: the parts always add up to the whole.

Shared costs, spread unattributed spend and the split of a usage line's cost over its token
classes all divide integer nano-dollars by weights. Each part gets the floor of its exact share;
the nano-dollars left over go one each to the largest remainders (ties: in key order), so no
split ever creates or loses money.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext


def allocate(total: int, weights: Mapping[str, Decimal | int]) -> dict[str, int]:
    """``total`` split over ``weights`` (keys in the order given). Zero weights get 0; when every
    weight is zero the split is even. Works for negative totals too (the split of ``-total``)."""
    if not weights:
        return {}
    if total < 0:
        return {key: -part for key, part in allocate(-total, weights).items()}
    shares = {key: Decimal(weight) for key, weight in weights.items()}
    whole = sum(shares.values(), Decimal(0))
    if whole <= 0:
        shares = dict.fromkeys(weights, Decimal(1))
        whole = Decimal(len(shares))
    parts: dict[str, int] = {}
    remainders: list[tuple[Decimal, int, str]] = []
    with localcontext() as context:
        context.prec = 80  # enough digits that the division never rounds the integer part
        for position, (key, share) in enumerate(shares.items()):
            exact = total * share / whole
            floor = int(exact)  # non-negative here, so int() is the floor
            parts[key] = floor
            remainders.append((exact - floor, -position, key))
    left = total - sum(parts.values())
    for _, _, key in sorted(remainders, reverse=True)[:left]:
        parts[key] += 1
    return parts
