"""Money is an integer number of micro-dollars (1 USD = 1,000,000 micros).

Example:
    >>> parse_usd("5.00")
    5000000
    >>> format_usd(1_234_567)
    '$1.23'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

__all__ = ["MICROS_PER_USD", "ceil_div", "format_usd", "parse_usd", "usd_for"]

MICROS_PER_USD = 1_000_000
MAX_MICROS = 10**15  # one billion dollars: anything above is a typo, not a budget
# What a person types: digits, maybe a point and decimals (no exponent, no "_", ASCII only).
_TYPED = re.compile(r"-?[0-9]+(\.[0-9]+)?|-?\.[0-9]+", re.ASCII)
# Commas only as thousands separators: 5,000.00 and 1,234,567, never 1,50 or 5,0,0.
_GROUPED = re.compile(r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", re.ASCII)


def parse_usd(value: object) -> int:
    """Parse a USD amount exactly into micros; strings may carry ``$`` and thousands commas.

    A comma only separates thousands (``"$1,234.50"``): ``"1,50"`` is refused rather
    than read as 150 or as 1.50.

    Raises:
        ValueError: not a finite, non-negative amount with at most six decimals.
    """
    if isinstance(value, bool):
        raise ValueError("expected an amount in USD, got a boolean")
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().removeprefix("$").strip()
        if "," in text:
            if not _GROUPED.fullmatch(text):
                raise ValueError(
                    f"{value!r} is not an amount in USD: a comma only separates thousands"
                    " (5,000.00); use a dot for decimals (1.50)"
                )
            text = text.replace(",", "")
        if not _TYPED.fullmatch(text):
            raise ValueError(f"{value!r} is not an amount in USD (write it like 5.00 or $5)")
    else:
        raise ValueError(f"expected an amount in USD, got {type(value).__name__}")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount in USD (write it like 5.00)") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    if amount < 0:
        raise ValueError(f"{value!r} is negative")
    if amount.is_signed():  # -0: a sign that says something else was meant
        raise ValueError(f"{value!r} has a minus sign (amounts are never negative)")
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"{value!r} has more than six decimals")
    if micros > MAX_MICROS:
        raise ValueError(f"{value!r} is more than $1,000,000,000")
    return int(micros)


def format_usd(micros: int, *, exact: bool = False) -> str:
    """Render micros as dollars: cents by default, every digit with ``exact=True``."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if exact and micros % 10_000:
        whole, frac = divmod(micros, MICROS_PER_USD)
        return f"{sign}${whole:,}.{frac:06d}".rstrip("0")
    cents = (micros + 5_000) // 10_000
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def usd_for(*amounts: int) -> Callable[[int], str]:
    """A ``format_usd`` for a sentence about ``amounts``: cents, unless rounding any of
    them to cents would hide the point ("$1.00 left, $1.00 asked" when 999,899 > 999,898).

    >>> usd = usd_for(999_899, 999_898)
    >>> usd(999_899), usd(1_000_000)
    ('$0.999899', '$1.00')
    """
    exact = any(m % 10_000 for m in amounts)
    return lambda micros: format_usd(micros, exact=exact)


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up (for prices: reservations never round down)."""
    return -(-numerator // denominator)
