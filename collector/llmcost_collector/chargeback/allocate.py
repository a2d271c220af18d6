"""Exact splits of an integer amount: the parts always add up to the whole.

Shared costs, spread unattributed spend and the split of a usage line's cost over its token
classes all divide integer nano-dollars by weights. Each part gets the floor of its exact share;
the nano-dollars left over go one each to the largest remainders (ties: in key order), so no
split ever creates or loses money. Decimal weights are scaled to integers first (exactly: by
a power of ten), so the arithmetic is integer throughout.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def integer_weights(weights: Mapping[K, Decimal | int]) -> dict[K, int]:
    """The same proportions as integers: every weight times one power of ten."""
    if all(type(weight) is int for weight in weights.values()):
        return dict(weights)  # type: ignore[arg-type]
    places = 0
    for weight in weights.values():
        if isinstance(weight, Decimal):
            exponent = weight.normalize().as_tuple().exponent
            if isinstance(exponent, int) and exponent < 0:
                places = max(places, -exponent)
    scale = 10**places
    return {key: int(Decimal(weight) * scale) for key, weight in weights.items()}


def allocate(total: int, weights: Mapping[K, Decimal | int]) -> dict[K, int]:
    """``total`` split over ``weights`` (keys in the order given). Zero weights get 0; when every
    weight is zero the split is even. Works for negative totals too (the split of ``-total``)."""
    if not weights:
        return {}
    if total < 0:
        return {key: -part for key, part in allocate(-total, weights).items()}
    shares = integer_weights(weights)
    if any(share < 0 for share in shares.values()):
        raise ValueError("weights must not be negative")
    whole = sum(shares.values())
    if whole == 0:
        shares = dict.fromkeys(weights, 1)
        whole = len(shares)
    parts: dict[K, int] = {}
    remainders: list[tuple[int, int, K]] = []
    for position, (key, share) in enumerate(shares.items()):
        part, remainder = divmod(total * share, whole)
        parts[key] = part
        remainders.append((-remainder, position, key))
    left = total - sum(parts.values())
    if left:
        for _, _, key in sorted(remainders)[:left]:
            parts[key] += 1
    return parts
