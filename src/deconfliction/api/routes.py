"""HTTP routes: each one authenticates, hands a plain body to the service and returns its answer."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

import pydantic_core
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, Field, ValidationError
from starlette.requests import HTTPConnection

from deconfliction.api.cells import MAX_CELLS, cells_geojson
from deconfliction.api.grid import SPACINGS_M, grid_geojson
from deconfliction.api.schemas import (
    ActivationIn,
    ActivityIn,
    AorIn,
    AssetIn,
    CancellationIn,
    CheckIn,
    DefaultDisclosureIn,
    ErrorBody,
    GrantIn,
    ObjectionIn,
    PartyIn,
    ReportBatchIn,
    ReportIn,
    TerritoryIn,
    TokenIn,
    TokenRevokeIn,
    ZoneIn,
)
from deconfliction.errors import DeconflictionError, NotFound
from deconfliction.service import Caller, Service

bearer = HTTPBearer(auto_error=False, description="A party token: Authorization: Bearer TOKEN")
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422, 503)}
LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "The party has used its budget of checks and proposals; see Retry-After."}
}
router = APIRouter(prefix="/v1", responses=ERRORS)
Json = dict[str, Any]


# Both dependencies are async only so that FastAPI runs them inline rather than in a
# worker thread: they do no I/O.
async def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


async def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    svc: Service = request.app.state.service
    return svc.authenticate(None if credentials is None else credentials.credentials, client_of(request))


def client_of(connection: HTTPConnection) -> str | None:
    """The client's address, for throttling unknown tokens (behind a proxy: the proxy's, unless it is told otherwise)."""
    return None if connection.client is None else connection.client.host


log = logging.getLogger("deconfliction")

ABUSE = frozenset({401, 403, 413, 429})
"""Refusals that may be someone trying what they should not: logged as warnings, the others as information."""


def log_refusal(connection: HTTPConnection, exc: DeconflictionError) -> None:
    """Every refusal, with the client's address, what it asked and why; never its token."""
    asked = f"{connection.scope.get('method', 'WEBSOCKET')} {connection.url.path}"
    level = logging.WARNING if exc.status in ABUSE else logging.INFO
    log.log(level, "refused %s from %s: %s %s: %s", asked, client_of(connection), exc.status, exc.code, exc)


def _whole(value: object) -> object:
    """A number in a URL or a header is written in digits: "12.0" or "1e3" is refused, not read as some whole number."""
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value.strip()):
        raise ValueError("must be a whole number, in digits")
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
"""An integer parameter (query, header) that only digits spell."""
Count = Annotated[int, Field(ge=0), BeforeValidator(_whole)]
"""The same, 0 or more."""
Positive = Annotated[int, Field(ge=1), BeforeValidator(_whole)]
"""The same, 1 or more."""


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Caller, Depends(caller)]


def body(model: Any) -> Json:
    return dict(model.model_dump(exclude_unset=True, mode="json"))


@router.post("/parties", status_code=201, tags=["admin"])
def create_party(data: PartyIn, svc: Svc, who: Who) -> Json:
    """Create a party (admin)."""
    return svc.create_party(who, body(data))


@router.get("/parties", tags=["picture"])
def list_parties(svc: Svc, who: Who) -> list[Json]:
    return svc.parties(who)


@router.get("/whoami", tags=["picture"])
def whoami(who: Who) -> Json:
    """The caller's party (null for the centre's tokens) and role: a console or the CLI needs no other way to know."""
    return {"party": who.party, "role": who.role.value}


@router.put("/parties/{party}/default-disclosure", tags=["disclosure"])
def set_default_disclosure(party: str, data: DefaultDisclosureIn, svc: Svc, who: Who) -> Json:
    """The level the party's new assets and zones get when they name none (the party's liaison)."""
    return svc.set_default_disclosure(who, party, body(data))


@router.post("/grants", status_code=201, tags=["disclosure"])
def grant(data: GrantIn, svc: Svc, who: Who) -> Json:
    """Let a named party see more of a class of the caller's objects (party B sees my sites exactly)."""
    return svc.grant(who, body(data))


@router.get("/grants", tags=["disclosure"])
def list_grants(svc: Svc, who: Who) -> list[Json]:
    """Grants the caller's party gave and was given."""
    return svc.grants(who)


@router.delete("/grants/{grantee}/{what}", tags=["disclosure"])
def withdraw_grant(grantee: str, what: str, svc: Svc, who: Who) -> Json:
    return svc.withdraw_grant(who, grantee, what)


@router.get("/probes", tags=["disclosure"])
def probes(svc: Svc, who: Who, asker: Annotated[str | None, Query(description="Only this asking party's.")] = None) -> list[Json]:
    """Signs that another party is mapping the caller's hidden assets: who asked, how often, how close, newest first."""
    return svc.probes_seen(who, asker)


@router.post("/parties/{party}/tokens", status_code=201, tags=["admin"])
def create_token(party: str, data: TokenIn, svc: Svc, who: Who) -> Json:
    """A new token for a party with a role (admin). The token is shown once; only its hash is kept."""
    return {"token": svc.create_token(who, party, data.role), "party": party, "role": data.role}


@router.post("/tokens/revoke", tags=["admin"])
def revoke_token(data: TokenRevokeIn, svc: Svc, who: Who) -> Json:
    """Revoke a token (an admin of its party, or the server admin): it opens nothing from now on, open streams end."""
    return svc.revoke_token(who, body(data))


@router.put("/territories/{party}", tags=["admin"])
def put_territory(party: str, data: TerritoryIn, svc: Svc, who: Who) -> Json:
    """Load a party's territory from the shared border reference (admin)."""
    return svc.put_territory(who, party, data.area)


@router.get("/territories", tags=["picture"])
def list_territories(svc: Svc, who: Who) -> list[Json]:
    return svc.territories(who)


@router.post("/assets", status_code=201, tags=["assets"])
def register_asset(data: AssetIn, svc: Svc, who: Who) -> Json:
    """Register a unit or site of the caller's party, with an optional initial position."""
    return svc.register_asset(who, body(data))


@router.get("/assets", tags=["assets"])
def list_assets(svc: Svc, who: Who) -> list[Json]:
    """Own assets in full; other parties' as their disclosure allows (hidden ones not at all)."""
    return svc.assets(who)


@router.get("/assets/{party}/{asset_id}", tags=["assets"])
def get_asset(party: str, asset_id: str, svc: Svc, who: Who) -> Json:
    return svc.asset(who, party, asset_id)


@router.delete("/assets/{asset_id}", tags=["assets"])
def withdraw_asset(asset_id: str, svc: Svc, who: Who) -> Json:
    return svc.withdraw_asset(who, asset_id)


@router.delete("/assets/{asset_id}/position", tags=["assets"])
def withdraw_position(asset_id: str, svc: Svc, who: Who) -> Json:
    """The asset's last position no longer holds (a site was moved away or closed)."""
    return svc.withdraw_position(who, asset_id)


@router.post("/reports", status_code=201, tags=["reports"])
def post_report(data: ReportIn, svc: Svc, who: Who) -> Json:
    """One position report; the answer reads the position back (lat/lon, MGRS, border)."""
    return svc.report(who, body(data))


@router.post("/reports/batch", status_code=201, tags=["reports"])
def post_reports(data: ReportBatchIn, svc: Svc, who: Who) -> Json:
    """Many reports in one transaction: all are taken, or none (the error names the bad one)."""
    return {"reports": svc.report_batch(who, [body(r) for r in data.reports])}


@router.post("/zones", status_code=201, tags=["zones"])
def declare_zone(data: ZoneIn, svc: Svc, who: Who) -> Json:
    return svc.declare_zone(who, body(data))


@router.get("/zones", tags=["zones"])
def list_zones(svc: Svc, who: Who) -> list[Json]:
    return svc.zones(who)


@router.delete("/zones/{zone_id}", tags=["zones"])
def withdraw_zone(zone_id: str, svc: Svc, who: Who) -> Json:
    return svc.withdraw_zone(who, zone_id)


@router.post("/aors", status_code=201, tags=["aors"])
def declare_aor(data: AorIn, svc: Svc, who: Who) -> Json:
    """Declare an area of responsibility; it is lapsed until first confirmed."""
    return svc.declare_aor(who, body(data))


@router.get("/aors", tags=["aors"])
def list_aors(svc: Svc, who: Who) -> list[Json]:
    return svc.aors(who)


@router.post("/aors/{aor_id}/confirm", tags=["aors"])
def confirm_aor(aor_id: str, svc: Svc, who: Who) -> Json:
    """State that the party's picture in this AOR is complete as of now."""
    return svc.confirm_aor(who, aor_id)


CHECKS = "/checks"
"""The checks' route below the router's prefix (``app.HotRoute`` answers it ahead of the router)."""


@router.post(CHECKS, tags=["checks"], responses=LIMITED)
async def post_check(data: CheckIn, svc: Svc, who: Who) -> Json:
    """Is it safe to do this here, now? conflict, unknown or clear, with the reasons; recorded."""
    return await svc.check_async(who, body(data))


async def check_fast(request: Request) -> Response:
    """``POST /v1/checks`` as served: the route above without FastAPI's per-request machinery.

    The hot route of the service. It authenticates, validates with the same ``CheckIn``
    model and answers with the same service call as :func:`post_check` (which stays as the
    documented route in the OpenAPI document), but skips dependency solving and response
    model serialisation, which cost more than the check itself. It runs on the event loop
    (a check is CPU-only and short) and awaits its durable record, so no worker thread is
    taken per check. It is served ahead of the router (``deconfliction.app.HotRoute``);
    tests/api runs every check test through it.
    """
    svc: Service = request.app.state.service
    who = svc.authenticate(bearer_token(request.headers.get("authorization")), client_of(request))
    try:
        data = CheckIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    answer = await svc.check_async(who, body(data))
    return Response(pydantic_core.to_json(answer), media_type="application/json")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, as FastAPI's HTTPBearer reads it."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@router.get("/readback", tags=["picture"])
def readback(svc: Svc, who: Who, position: Annotated[str, Query(examples=["42S XD 84886 24985"])]) -> Json:
    """Read a position in any notation back in canonical form, storing nothing."""
    del who
    return svc.read_position(position)


@router.get("/tak", tags=["admin"])
def tak(request: Request, svc: Svc, who: Who) -> Json:
    """The TAK gateway (server admin): its listeners, the devices connected, what it took, refused and dropped."""
    svc.require_admin(who)
    gateway = getattr(request.app.state, "tak", None)
    if gateway is None:
        raise NotFound("this server has no TAK listeners: deconflict serve --tak PARTY:PORT")
    status: Json = gateway.status()
    return status


@router.get("/cells", tags=["picture"])
def cells(
    who: Who,
    ids: Annotated[str, Query(description=f"H3 cell ids, comma-separated (at most {MAX_CELLS}).", examples=["87209306dffffff"])],
) -> Json:
    """The outlines of H3 cells (as coarse assets carry them) as GeoJSON polygons; pure arithmetic, reads nothing stored."""
    del who
    return cells_geojson(ids)


@router.get("/grid", tags=["picture"])
def grid(
    who: Who,
    area: Annotated[str, Query(description="A box: west,south,east,north in degrees.", examples=["70.9,34.5,71.1,34.6"])],
    spacing_m: Annotated[Whole, Query(description=f"The spacing of the lines: one of {SPACINGS_M} metres.")] = 1000,
) -> Json:
    """MGRS grid lines inside a box (the UTM zone of its centre), labelled, as GeoJSON; pure arithmetic, reads nothing stored."""
    del who
    return grid_geojson(area, spacing_m)


@router.get("/picture", tags=["picture"])
def picture(
    svc: Svc,
    who: Who,
    response: Response,
    area: Annotated[
        str | None, Query(description="A box: west,south,east,north in degrees.", examples=["70.9,34.5,71.1,34.6"])
    ] = None,
    kind: Annotated[
        Literal["fires", "air", "ground", "other", "patrol", "movement"] | None,
        Query(description="Widen the box by this kind's buffer (an activity kind or a check kind)."),
    ] = None,
    as_of: Annotated[
        str | None, Query(description="The picture as the caller could see it then (ISO 8601), rebuilt from the record.")
    ] = None,
) -> Json:
    """Look at the picture: its version and a picture key; with an area, what the caller may see there.

    Proposing or activating an activity needs the key for its buffered volumes: proof that
    the proposer has seen the current picture there.
    """
    response.headers["Cache-Control"] = "no-store"
    return svc.look(who, area, kind, as_of)


@router.post("/activities", status_code=201, tags=["activities"], responses=LIMITED)
def propose(data: ActivityIn, svc: Svc, who: Who) -> Json:
    """Propose a patrol, movement, air mission or fire mission; it waits for every affected party's answer."""
    return svc.propose(who, body(data))


@router.get("/activities", tags=["activities"])
def list_activities(svc: Svc, who: Who) -> list[Json]:
    """Activities the caller's party proposed or is affected by."""
    return svc.activities(who)


@router.get("/activities/{party}/{activity_id}", tags=["activities"])
def get_activity(party: str, activity_id: str, svc: Svc, who: Who) -> Json:
    """One activity, named by its proposer and its id; not found unless it concerns the caller's party."""
    return svc.activity(who, party, activity_id)


@router.post("/activities/{party}/{activity_id}/acknowledge", tags=["activities"])
def acknowledge(party: str, activity_id: str, svc: Svc, who: Who) -> Json:
    """An affected party has seen the activity (``party``: its proposer) and has nothing against it."""
    return svc.acknowledge(who, party, activity_id)


@router.post("/activities/{party}/{activity_id}/object", tags=["activities"])
def object_to(party: str, activity_id: str, data: ObjectionIn, svc: Svc, who: Who) -> Json:
    """An affected party objects, with a reason: the activity is not cleared while the objection stands."""
    return svc.object(who, party, activity_id, body(data))


@router.post("/activities/{party}/{activity_id}/activate", tags=["activities"])
def activate(party: str, activity_id: str, data: ActivationIn, svc: Svc, who: Who) -> Json:
    """The proposer starts a cleared activity; an uncleared one only with an override reason, notified at once."""
    return svc.activate(who, party, activity_id, body(data))


@router.post("/activities/{party}/{activity_id}/complete", tags=["activities"])
def complete(party: str, activity_id: str, svc: Svc, who: Who) -> Json:
    """The proposer (``party``) ends its active activity."""
    return svc.complete(who, party, activity_id)


@router.post("/activities/{party}/{activity_id}/cancel", tags=["activities"])
def cancel(party: str, activity_id: str, data: CancellationIn, svc: Svc, who: Who) -> Json:
    """The proposer (``party``) calls off its activity before it has ended."""
    return svc.cancel(who, party, activity_id, body(data))


@router.get("/ledger/head", tags=["ledger"])
def ledger_head(svc: Svc, who: Who) -> Json:
    """The latest signed tree head, with the node's public key (raw Ed25519, hex).

    The signature is over the UTF-8 bytes of ``{"root_hash","timestamp","tree_size"}`` with sorted keys and no spaces.
    """
    del who
    return svc.ledger_head()


@router.get("/ledger/heads", tags=["ledger"])
def ledger_heads(svc: Svc, who: Who) -> list[Json]:
    """Every signed tree head published, oldest first: a verifier checks each and their consistency."""
    del who
    return svc.ledger_heads()


@router.get("/ledger/entries", tags=["ledger"])
def ledger_entries(
    svc: Svc,
    who: Who,
    start: Annotated[Count, Query(description="The first entry, from 0.")] = 0,
    end: Annotated[Count | None, Query(description="The entry after the last (exclusive); pages of 1000.")] = None,
) -> Json:
    """Entries as hashed (``leaf_hex``) and decoded (``event``), with the sealed parts the caller may read."""
    return svc.ledger_entries(who, start, end)


@router.get("/ledger/proof/inclusion", tags=["ledger"])
def inclusion_proof(svc: Svc, who: Who, index: Annotated[Whole, Query()], tree_size: Annotated[Whole, Query()]) -> Json:
    """RFC 9162 section 2.1.3 audit path of entry ``index`` in the tree of ``tree_size`` entries."""
    del who
    return svc.inclusion_proof(index, tree_size)


@router.get("/ledger/proof/consistency", tags=["ledger"])
def consistency_proof(svc: Svc, who: Who, first: Annotated[Whole, Query()], second: Annotated[Whole, Query()]) -> Json:
    """RFC 9162 section 2.1.4 proof that the tree of ``first`` entries is a prefix of the tree of ``second``."""
    del who
    return svc.consistency_proof(first, second)
