"""``deconflict import FILE.geojson``: a FeatureCollection of assets, zones, AORs and territories.

Each feature says what it is in ``properties.object``: ``asset`` (a Point; the other
properties as for ``POST /v1/assets``), ``zone`` (``kind``, ``id``, ...), ``aor``
(``id``, ``freshness_s``) or ``territory`` (``party``; admin only). Features are taken in
order; the first refused one stops the import and is named with its index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deconfliction.client import Client
from deconfliction.errors import DeconflictionError, InvalidInput
from deconfliction.geo import parse_geojson

OBJECTS = ("asset", "zone", "aor", "territory")


def from_geojson(feature: object, index: int) -> tuple[str, dict[str, Any]]:
    """One feature as (object, request body)."""
    field = f"features.{index}"
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise InvalidInput("each entry must be a GeoJSON Feature", field=field)
    props = dict(feature.get("properties") or {})
    obj = props.pop("object", None)
    if obj not in OBJECTS:
        raise InvalidInput(
            f"properties.object must be one of {', '.join(OBJECTS)}, not {obj!r}", field=f"{field}.properties.object"
        )
    geometry = feature.get("geometry")
    if obj == "asset":
        if geometry is not None:
            point = parse_geojson(geometry, f"{field}.geometry", ("Point",))
            # Fixed decimals (nine: well under a millimetre): the position parser takes no exponents.
            props["position"] = f"{point.y:.9f}, {point.x:.9f}"
        return obj, props
    return obj, {**props, "area": geometry}


def import_features(client: Client, collection: object) -> Iterator[dict[str, Any]]:
    """Send each feature to the client; yields one result per feature."""
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise InvalidInput("the file must hold a GeoJSON FeatureCollection", field="type")
    features = collection.get("features")
    if not isinstance(features, list):
        raise InvalidInput("features must be a list", field="features")
    for i, feature in enumerate(features):
        obj, body = from_geojson(feature, i)
        try:
            if obj == "asset":
                result = client.register_asset(body)
            elif obj == "zone":
                result = client.declare_zone(body)
            elif obj == "aor":
                result = client.declare_aor(body)
            else:
                party = body.pop("party", None)
                if not isinstance(party, str):
                    raise InvalidInput("a territory needs properties.party", field="properties.party")
                result = client.put_territory(party, body["area"])
        except DeconflictionError as exc:
            raise exc.at(f"features.{i}") from None
        yield {"feature": i, "object": obj, "id": body.get("id") or body.get("party") or result.get("party")}
