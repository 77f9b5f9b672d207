"""Canonical JSON is the same bytes whichever encoder makes it: the leaf hashes and commitments depend on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.events import report_event
from deconfliction.geo import LatLon
from deconfliction.ledger.seal import Sealed, _alike, canonical_json, parts_json
from deconfliction.model import AssetKind, Disclosure, Report

STANDARD = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""The encoder every entry was written with before orjson took the flat objects."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # past 64 bits too
    st.floats(),  # NaN, infinities, subnormals, -0.0, 1e-05 and 1e+16 among them
    st.floats(min_value=1e-6, max_value=1e-3),  # where orjson and the encoder write floats differently
    st.text(),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),  # lone surrogates
    st.sampled_from(list(Disclosure) + list(AssetKind)),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(), values, max_size=12)


@settings(max_examples=3000)
@given(objects)
def test_canonical_json_writes_what_the_standard_encoder_writes_or_refuses_what_it_refuses(data: dict[str, Any]) -> None:
    try:
        expected = STANDARD.encode(data)
    except ValueError:  # NaN or an infinity: refused, as a write must refuse it
        with pytest.raises(ValueError):
            canonical_json(data)
        return
    assert canonical_json(data) == expected


@pytest.mark.parametrize(("value", "written"), [(1e-05, "1e-05"), (1e-07, "1e-07"), (1e16, "1e+16"), (-0.0, "-0.0")])
def test_the_floats_orjson_would_write_otherwise_are_written_as_before(value: float, written: str) -> None:
    assert canonical_json({"x": value}) == f'{{"x":{written}}}'


def test_a_reports_data_and_a_checks_answer_take_the_fast_way() -> None:
    """The reason for the two ways: a report's data is encoded on every report ingested, a check's answer (twice:
    as its asker saw it and in full) on every check."""
    report = Report("west", "w-1", LatLon(34.512345, 71.123456), datetime(2026, 1, 1, tzinfo=UTC), 10.0, None, "decimal", None)
    data = report_event(report, datetime(2026, 1, 1, tzinfo=UTC), Disclosure.EXACT, AssetKind.UNIT).data
    finding = {
        "party": "west",
        "object": AssetKind.UNIT,
        "id": "w-1",
        "name": "1 Coy",
        "disclosure": "exact",
        "distance_m": 812.3,
    }
    position = {"lat": 34.512345, "lon": 71.123456, "mgrs": "42S XD 84886 24985"}
    answer = {"conflicts": [finding | {"position": position}], "gaps": [], "flags": (), "picture_version": 12}
    for each in (data, answer):
        assert _alike(each)
        assert canonical_json(each) == STANDARD.encode(each)


readers = st.lists(st.text(), max_size=3).map(tuple)


@settings(max_examples=500)
@given(st.lists(st.tuples(readers, st.binary(min_size=16, max_size=16), objects), max_size=3))
def test_sealed_parts_are_written_as_the_encoder_writes_their_list(
    parts: list[tuple[tuple[str, ...], bytes, dict[str, Any]]],
) -> None:
    """A row's sealed parts are assembled around each part's data as sealing encoded it, byte for byte the list."""
    try:
        sealed = [Sealed(who, salt.hex(), data, canonical_json(data)) for who, salt, data in parts]
    except ValueError:  # NaN or an infinity: refused before anything is assembled
        return
    assert parts_json(sealed) == STANDARD.encode([p.as_json() for p in sealed])
    assert parts_json([Sealed(p.readers, p.salt, p.data) for p in sealed]) == parts_json(sealed), "encoded here or there"
