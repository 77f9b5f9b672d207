"""Request bodies as pydantic models: they shape the OpenAPI document; the service validates meaning.

Positions stay strings and geometries stay GeoJSON mappings here, so that the service can
read them with one parser and answer with one precise error, whichever outlet they came by.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

GeoJSON = dict[str, Any]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartyIn(Body):
    id: str = Field(description="Lowercase id: a-z, 0-9, '.', '_', '-'.", examples=["isaf"])
    name: str = Field(examples=["ISAF"])
    stale_after_s: float | None = Field(None, description="Default life of this party's unit reports, seconds (1800).")


class TokenIn(Body):
    role: Literal["admin", "liaison", "viewer", "auditor"]


class TokenRevokeIn(Body):
    token: str = Field(description="The token to revoke, as it was given out.")


class TerritoryIn(Body):
    area: GeoJSON = Field(description="GeoJSON Polygon or MultiPolygon, lon/lat.")


class AssetIn(Body):
    id: str
    kind: Literal["unit", "site"]
    name: str | None = None
    disclosure: Literal["exact", "coarse", "hidden"] = "exact"
    position: str | None = Field(None, description="Initial position in any notation.", examples=["42S XD 84886 24985"])
    uncertainty_m: float | None = None
    time: AwareDatetime | None = None
    stale_after_s: float | None = None


class ReportIn(Body):
    asset: str
    position: str = Field(examples=["34.5500, 71.0150", "42S XD 84886 24985", "42N 684887 3824986"])
    time: AwareDatetime | None = Field(None, description="When the position was taken; default now.")
    uncertainty_m: float | None = Field(None, description="Radius of the position's uncertainty, metres.")
    stale_after_s: float | None = Field(None, description="Units only: the report goes stale this long after its time.")
    how: str | None = Field(
        None, description="How the position was found, as CoT's how: m-g (GPS), h-e (entered by hand), ...", examples=["m-g"]
    )


class ReportBatchIn(Body):
    reports: list[ReportIn]


class WindowIn(Body):
    start: AwareDatetime
    end: AwareDatetime


class ZoneIn(Body):
    id: str
    kind: Literal["operating_area", "protected_area", "no_fire_area", "route"]
    name: str | None = None
    area: GeoJSON = Field(description="Polygon or MultiPolygon; a route is a LineString.")
    width_m: float | None = Field(None, description="Routes only: full width of the corridor, metres.")
    window: WindowIn | None = None
    altitude_m: list[float] | None = Field(None, description="[low, high] metres above mean sea level.")
    disclosure: Literal["exact", "coarse", "hidden"] = "exact"


class AorIn(Body):
    id: str
    area: GeoJSON
    freshness_s: float = Field(description="The party reports all its assets here at least this often, seconds.")


class CheckIn(Body):
    position: str | None = Field(None, examples=["42S XD 84698 25204"])
    radius_m: float | None = None
    area: GeoJSON | None = None
    kind: Literal["fires", "air", "ground", "other"]
    window: WindowIn | None = None
    altitude_m: list[float] | None = None
    activity: str | None = Field(None, description="The caller's activity this check belongs to: drift from it is flagged.")
    as_of: AwareDatetime | None = Field(None, description="Answer as the service would have answered at this past instant.")


class VolumeIn(Body):
    position: str | None = Field(None, description="A point in any notation, with radius_m.", examples=["42S XD 84698 25204"])
    radius_m: float | None = None
    area: GeoJSON | None = Field(None, description="Polygon or MultiPolygon; or a LineString route with width_m.")
    width_m: float | None = Field(None, description="Routes only: full width of the corridor, metres.")
    window: WindowIn
    altitude_m: list[float] | None = None


class ActivityIn(Body):
    id: str | None = Field(None, description="Shared by all parties; made from the party's id when absent.")
    kind: Literal["patrol", "movement", "air", "fires"]
    purpose: str
    volumes: list[VolumeIn]
    key: str | None = Field(None, description="The picture key last obtained for the buffered volumes (GET /v1/picture).")


class ObjectionIn(Body):
    reason: str


class ActivationIn(Body):
    key: str | None = Field(None, description="A current picture key for the activity's buffered volumes.")
    override: str | None = Field(None, description="Why the activity starts without clearance; recorded and notified.")


class CancellationIn(Body):
    reason: str | None = None


class DefaultDisclosureIn(Body):
    disclosure: Literal["exact", "coarse", "hidden"]


class GrantIn(Body):
    grantee: str = Field(description="The party that may see more.", examples=["isaf"])
    what: Literal["unit", "site", "zone"]
    level: Literal["exact", "coarse"]


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None
    key: str | None = Field(None, description="stale_picture: a fresh picture key for the area.")
    area: list[float] | None = Field(None, description="stale_picture: the box the key must cover (west, south, east, north).")
    changed: list[dict[str, Any]] | None = Field(None, description="stale_picture: changes there the caller may see.")


class ErrorBody(BaseModel):
    error: ErrorDetail
