"""PHP value semantics the panel's validation and casting depend on.

The real panel is Laravel on PHP 8: a JSON body is decoded into PHP scalars and arrays, and
rules such as ``integer`` (``filter_var(..., FILTER_VALIDATE_INT)``), ``numeric``
(``is_numeric``) and ``boolean`` (a strict ``in_array``) follow PHP's rules, not Python's.
A client that sends ``"2048"`` or ``true`` where a number is expected must see exactly what
the real panel would do, so these helpers reproduce the relevant corners.
"""

from __future__ import annotations

import math
import re
from typing import Any

_PHP_INT_MAX = 2**63 - 1
_PHP_INT_MIN = -(2**63)

# is_numeric() in PHP 8: optional leading and trailing whitespace, a sign, digits with an
# optional fraction, or a fraction alone, and an optional exponent. No hex, no "inf"/"nan".
_NUMERIC_RE = re.compile(r"^[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*$")
# FILTER_VALIDATE_INT: optional sign, no leading zeros (except "0" itself).
_FILTER_INT_RE = re.compile(r"^[+-]?(0|[1-9]\d*)$")


def is_array(value: Any) -> bool:
    """A PHP array is what a JSON object or a JSON list decodes to."""
    return isinstance(value, dict | list)


def is_numeric(value: Any) -> bool:
    """PHP ``is_numeric``: ints, floats and numeric strings; never booleans or null."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _NUMERIC_RE.match(value) is not None
    return False


def filter_int(value: Any) -> int | None:
    """PHP ``filter_var($value, FILTER_VALIDATE_INT)``; ``None`` where PHP returns false.

    PHP converts scalars to strings first, so ``true`` is valid (``"1"``), ``false`` is not
    (``""``), and a float is valid only when its string form is an integer (``5.0`` is ``"5"``).
    """
    if value is None or is_array(value):
        return None
    text = to_string(value).strip(" \t\n\r\v\x00")
    if _FILTER_INT_RE.match(text) is None:
        return None
    number = int(text)
    if number > _PHP_INT_MAX or number < _PHP_INT_MIN:
        return None
    return number


def float_to_string(value: float) -> str:
    """PHP 8 float-to-string conversion (``serialize_precision = -1``)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}E{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def to_string(value: Any) -> str:
    """PHP ``(string)`` cast for scalars (arrays become ``"Array"`` as PHP would warn and do)."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_to_string(value)
    if isinstance(value, str):
        return value
    return "Array"


def to_number(value: Any) -> float:
    """The numeric value of something ``is_numeric`` accepted."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return float(str(value).strip())


def to_int(value: Any) -> int:
    """PHP ``(int)`` cast, which Eloquent's ``integer`` cast uses on read."""
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        if is_numeric(value):
            number = to_number(value)
            return int(number) if math.isfinite(number) else 0
        match = re.match(r"^\s*[+-]?\d+", value)
        return int(match.group(0)) if match else 0
    return 1 if value else 0


def truthy(value: Any) -> bool:
    """PHP truthiness: ``null``, ``false``, ``0``, ``0.0``, ``""``, ``"0"`` and ``[]`` are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value not in ("", "0")
    if isinstance(value, dict | list):
        return len(value) > 0
    return True


def loose_string_equals(left: str, right: str) -> bool:
    """PHP 8 ``==`` between two strings: numeric strings compare as numbers."""
    if is_numeric(left) and is_numeric(right):
        return to_number(left) == to_number(right)
    return left == right


def db_int(value: Any) -> int | None:
    """How MySQL would compare a bound value against an integer key column.

    Used for ``exists:`` lookups and route bindings: ``"13"`` and ``13.0`` find row 13, ``true``
    finds row 1, anything non-numeric finds nothing.
    """
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and is_numeric(value):
        number = to_number(value)
        return int(number) if number.is_integer() else None
    return None


def mb_strlen(value: Any) -> int:
    """``mb_strlen`` of a scalar after PHP's string conversion."""
    return len(to_string(value))


def db_store_int(value: Any) -> int:
    """What an INT column holds after Eloquent saves a validated ``numeric`` value and ``refresh()``
    reads it back: MySQL rounds a fraction half away from zero (``2048.5`` becomes 2049)."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if not is_numeric(value):
        return to_int(value)
    number = to_number(value)
    if not math.isfinite(number):
        return 0
    return math.floor(abs(number) + 0.5) * (1 if number >= 0 else -1)


def strict_equals(left: Any, right: Any) -> bool:
    """PHP ``===`` between two decoded JSON scalars: same type and same value."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return type(left) is type(right) and left == right
