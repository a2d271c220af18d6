"""Money: integer nano-dollars (1e-9 USD), one rounding rule, one decimal format.

Every amount the collector stores, sums or prints is an ``int`` of nano-dollars: exact to add in
SQL, fine enough that rounding one call costs at most half a nano-dollar. Arithmetic that needs
fractions (prices per million tokens, markups in percent) is done in ``Decimal`` and brought back
to nano-dollars by ``round_nanos`` only, so pricing, chargeback and invoices round the same way
(half to even: no drift up or down across millions of calls). Floats appear only at the edge to
Prometheus (``nanos_to_float_usd``), which is for trends and alerts, never for billing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANOS_PER_USD = 1_000_000_000
ROUNDING = ROUND_HALF_EVEN
_ONE = Decimal(1)


def round_nanos(amount_nanos: Decimal) -> int:
    """A fractional nano-dollar amount to whole nano-dollars, half to even."""
    return int(amount_nanos.quantize(_ONE, rounding=ROUNDING))


def picos_to_nanos(picos: int) -> int:
    """Integer pico-dollars to nano-dollars with the same half-to-even rule, in integers only
    (the pricing hot path: no ``Decimal`` per call)."""
    nanos, rest = divmod(picos, 1000)
    if rest > 500 or (rest == 500 and nanos % 2):
        nanos += 1
    return nanos


def usd_to_nanos(usd: Decimal | int | str) -> int:
    """Dollars (``Decimal``, ``int`` or a decimal string, never a float) to nano-dollars."""
    if isinstance(usd, float):
        raise TypeError("money is never a float: pass a Decimal or a decimal string")
    return round_nanos(Decimal(usd).scaleb(9))


def nanos_to_usd(nanos: int) -> Decimal:
    """Exact dollars for integer nano-dollars."""
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: int) -> str:
    """Exact dollars as plain fixed-point text (``0.000000150``, never ``1.50E-7``)."""
    return format(nanos_to_usd(nanos), "f")


def nanos_to_float_usd(nanos: int) -> float:
    """Dollars as a float, for Prometheus samples only (trends and alerts, not money of record)."""
    return nanos / NANOS_PER_USD
