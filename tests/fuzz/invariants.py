"""What the position parser promises for any text at all, written once for the fuzzers that hold it to it.

- It refuses with :class:`InvalidPosition` (naming the field) or it reads a place on the globe; it
  never raises anything else.
- A place it reads, it reads back: written out again as decimal degrees, and as MGRS where MGRS is
  defined, the parser finds the same place (to a centimetre, and to MGRS's metre). A string it
  accepts cannot mean one place now and another once it is relayed.
- Spacing and letter case do not change the place.
"""

from __future__ import annotations

import math

from deconfliction.errors import InvalidPosition
from deconfliction.geo import ParsedPosition, geodesic_m, parse_position, to_mgrs

MGRS_READ_BACK_M = 1.5  # a 1 m MGRS square's centre is at most 0.71 m from any point in it, plus rounding


def holds_for(text: str) -> ParsedPosition | None:
    """Hold the parser to its promises for ``text``; the position read, or None if it was refused."""
    try:
        parsed = parse_position(text)
    except InvalidPosition as refused:
        assert refused.field == "position" and refused.message, repr(text)
        return None
    point = parsed.point
    assert math.isfinite(point.lat) and math.isfinite(point.lon), repr(text)
    assert -90.0 <= point.lat <= 90.0 and -180.0 <= point.lon <= 180.0, repr(text)
    assert parsed.notation in {"decimal", "dms", "mgrs", "utm"}, repr(text)
    assert parsed.precision_m >= 0.0, repr(text)

    assert parse_position(f"  {text.lower()}\t") == parsed, f"{text!r} reads otherwise in lower case or spaced"
    decimal = parse_position(f"{point.lat:.9f}, {point.lon:.9f}").point
    assert geodesic_m(decimal, point) < 0.01, f"{text!r} does not read back as decimal degrees"
    reference = to_mgrs(point)
    if reference is not None:
        try:
            again = parse_position(reference).point
        except InvalidPosition:
            assert not -80.0 <= point.lat <= 84.0, f"{text!r} reads back as MGRS {reference!r}, which is refused"
        else:
            assert geodesic_m(again, point) < MGRS_READ_BACK_M, f"{text!r} reads back as MGRS {reference!r}, elsewhere"
    return parsed
