"""``deconflict report``: a self-contained HTML investigation report of an area over a period.

It holds, in one file with no external assets: maps of the area as the reader could see it
at chosen instants (inline SVG), a timeline of what the record holds for the area
(reports, confirmations and lapses, checks with their answers, proposals and answers of
activities), and for every line the entry's bytes, its inclusion proof and the signed tree
head they lead to. A script in the page re-hashes each line and folds its proof (RFC 9162,
with the browser's own SHA-256) and marks it verified against the head's root; the head's
Ed25519 signature is for any Ed25519 library (or ``deconflict ledger verify``) to check.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import h3
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from deconfliction.errors import DeconflictionError
from deconfliction.geo import parse_position

MAP_SIZE = 360
"""Width of each map in the page, pixels."""


class Record(Protocol):
    """What the report reads: a client of the service (over HTTP, or a store opened in process)."""

    def ledger_head(self) -> dict[str, Any]: ...
    def ledger_entries(self, start: int) -> dict[str, Any]: ...
    def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]: ...
    def look(self, area: str | None, kind: str | None, as_of: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Line:
    """One line of the timeline: an entry of the record that concerns the area."""

    index: int
    time: str
    type: str
    party: str | None
    summary: str
    leaf_hex: str


def _readable(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry's data with the sealed parts this reader may read put back."""
    data = {k: v for k, v in entry["event"]["data"].items() if k != "sealed"}
    for part in entry.get("sealed") or []:
        if part is not None:
            data.update(part["data"])
    return data


def _point(data: dict[str, Any]) -> BaseGeometry | None:
    return Point(data["lon"], data["lat"]) if "lat" in data and "lon" in data else None


class _Timeline:
    """Walks the record in order, remembering the shapes later entries refer to (AORs, activities)."""

    def __init__(self, area: BaseGeometry, start: datetime, end: datetime) -> None:
        self.area, self.start, self.end = area, start, end
        self.aors: dict[tuple[str, str], BaseGeometry] = {}
        self.activities: dict[tuple[str, str], BaseGeometry] = {}  # by (proposer, id), as the picture keys them

    def line(self, entry: dict[str, Any]) -> Line | None:
        event = entry["event"]
        data = _readable(entry)
        where, summary = self._where(event["type"], data)
        when = datetime.fromisoformat(event["time"])
        if where is None or not where.intersects(self.area) or not self.start <= when <= self.end:
            return None
        return Line(entry["index"], event["time"], event["type"], event["party"], summary, entry["leaf_hex"])

    def _where(self, type_: str, d: dict[str, Any]) -> tuple[BaseGeometry | None, str]:
        if type_ == "aor.declared":
            self.aors[(d["party"], d["id"])] = shape(d["area"])
            return self.aors[(d["party"], d["id"])], f"{d['party']} declares AOR {d['id']} (freshness {d['freshness_s']:g} s)"
        if type_ in ("aor.confirmed", "aor.lapsed"):
            verb = "confirms" if type_ == "aor.confirmed" else "lets lapse"
            return self.aors.get((d["party"], d["id"])), f"{d['party']} {verb} AOR {d['id']}"
        if type_ == "report.accepted":
            return _point(d), f"{d['party']} reports {d.get('asset', 'an asset')} at {d.get('lat')}, {d.get('lon')}"
        if type_ == "zone.declared" and "area" in d:
            return shape(d["area"]), f"{d['party']} declares {d.get('kind', 'a zone')} {d.get('id', '')}"
        if type_ == "check.asked" and "query" in d:
            return _check_place(d["query"]), f"{d['asker']} asks {d['query'].get('kind')}: {d['status']}{_findings(d)}"
        if type_ == "activity.proposed" and "envelope" in d:
            self.activities[(d["party"], d["id"])] = shapely.box(*d["envelope"])
            return self.activities[(d["party"], d["id"])], f"{d['party']} proposes {d['kind']} {d['id']}: {d.get('purpose', '')}"
        if type_.startswith("activity.") and (d.get("party"), d.get("id")) in self.activities:
            reason = f" ({d['reason']})" if d.get("reason") else f" (override: {d['override']})" if d.get("override") else ""
            what = f"{d['party']}/{d['id']}"
            return self.activities[(d["party"], d["id"])], f"{type_.split('.')[1]} {what} by {d.get('by') or 'the clock'}{reason}"
        return None, ""


def _check_place(query: dict[str, Any]) -> BaseGeometry | None:
    if isinstance(query.get("area"), dict):
        return shape(query["area"])
    try:
        p = parse_position(query.get("position")).point
    except DeconflictionError:
        return None
    return Point(p.lon, p.lat)


def _findings(d: dict[str, Any]) -> str:
    conflicts = (d.get("answer") or {}).get("conflicts") or []
    parties = sorted({c["party"] for c in conflicts})
    return f" (conflicts with {', '.join(parties)})" if parties else ""


def entries(record: Record) -> Iterator[dict[str, Any]]:
    """Every entry of the record as the reader may see it, page after page (``GET /v1/ledger/entries``)."""
    start: int | None = 0
    while start is not None:
        page = record.ledger_entries(start)
        yield from page["entries"]
        start = page["next"]


def build_report(record: Record, area: BaseGeometry, start: datetime, end: datetime, instants: list[datetime]) -> str:
    """The report as one HTML document."""
    head = record.ledger_head()
    timeline = _Timeline(area, start, end)
    lines = [line for entry in entries(record) if (line := timeline.line(entry)) is not None]
    proofs = {
        line.index: record.inclusion_proof(line.index, head["tree_size"])["audit_path"]
        for line in lines
        if line.index < head["tree_size"]
    }
    box = ",".join(f"{v:.6f}" for v in area.bounds)
    maps = [(t, _picture_at(record, box, t)) for t in instants]
    return _page(head, area, start, end, lines, proofs, maps)


def _picture_at(record: Record, box: str, when: datetime) -> dict[str, Any] | str:
    """What the reader could see in the box then, or why nothing can be shown (its party did not exist yet)."""
    try:
        return record.look(box, None, when.isoformat())
    except DeconflictionError as exc:
        return exc.message


def _svg(area: BaseGeometry, picture: dict[str, Any]) -> str:
    """The area and what the picture holds in it, on an equirectangular plane scaled to the map."""
    minx, miny, maxx, maxy = area.bounds
    scale = MAP_SIZE / max(maxx - minx, maxy - miny, 1e-9)

    def xy(lon: float, lat: float) -> str:
        return f"{(lon - minx) * scale:.1f},{(maxy - lat) * scale:.1f}"

    def outline(geom: BaseGeometry, cls: str, title: str) -> str:
        parts = []
        for poly in getattr(geom, "geoms", [geom]):
            ring = getattr(poly, "exterior", poly)
            points = " ".join(xy(x, y) for x, y in ring.coords)
            parts.append(f'<polyline class="{cls}" points="{points}"><title>{html.escape(title)}</title></polyline>')
        return "".join(parts)

    shapes = [outline(area, "area", "the area")]
    shapes += [
        outline(shape(a["area"]), "aor " + a["status"], f"AOR {a['party']}/{a['id']}: {a['status']}") for a in picture["aors"]
    ]
    shapes += [outline(shape(z["area"]), "zone", f"{z['kind']} {z['party']}/{z['id']}") for z in picture["zones"] if "area" in z]
    for act in picture.get("activities", []):
        title = f"{act['kind']} {act['party']}/{act['id']} ({act['state']})"
        shapes.append(outline(shapely.box(*act["area"]), "activity", title))
    for a in picture["assets"]:
        if "cell" in a:  # a coarse asset: its cell, never a point
            cell = shapely.Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(a["cell"])])
            shapes.append(outline(cell, "cell", f"{a['party']}/{a['id']} ({a['kind']}, coarse)"))
        if "position" in a:
            x, y = xy(a["position"]["lon"], a["position"]["lat"]).split(",")
            label = html.escape(f"{a['party']}/{a['id']} ({a['kind']})")
            shapes.append(f'<circle class="asset" cx="{x}" cy="{y}" r="4"><title>{label}</title></circle>')
    height = (maxy - miny) * scale
    return f'<svg viewBox="-5 -5 {MAP_SIZE + 10} {height + 10:.1f}" width="{MAP_SIZE}" role="img">{"".join(shapes)}</svg>'


_STYLE = """
body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ccc;padding:.3em;text-align:left;vertical-align:top;font-size:.9em}
code{font-size:.8em;word-break:break-all}.maps{display:flex;gap:1em;flex-wrap:wrap}
polyline{fill:none;stroke-width:1.5}.area{stroke:#000;stroke-dasharray:4}.aor{stroke:#27c}.lapsed{stroke:#c22}
.zone{stroke:#c80}.asset{fill:#222}.cell{stroke:#555;stroke-dasharray:2}.activity{stroke:#a0a}
pre{white-space:pre-wrap;word-break:break-all;font-size:.8em}
.ok::before{content:"\\2714  "}.bad::before{content:"\\2718  "}.ok{color:#063}.bad{color:#a00}
"""

# Checks every line in the browser: SHA-256(0x00 || entry), then RFC 9162 section 2.1.3.2 over the audit path.
_SCRIPT = """
const hex = h => Uint8Array.from(h.match(/../g) || [], b => parseInt(b, 16));
const tohex = b => Array.from(new Uint8Array(b), x => x.toString(16).padStart(2, "0")).join("");
const sha = async (...parts) => new Uint8Array(await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer()));
async function verify(leafHex, index, size, path, root) {
  let fn = index, sn = size - 1, r = await sha(new Uint8Array([0]), hex(leafHex));
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha(new Uint8Array([1]), hex(p), r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
    } else { r = await sha(new Uint8Array([1]), r, hex(p)); }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 && tohex(r) === root;
}
(async () => {
  const head = JSON.parse(document.getElementById("head").textContent);
  const rows = document.querySelectorAll("tr[data-index]");
  let good = 0;
  for (const row of rows) {
    const cell = row.querySelector(".proof");
    const path = JSON.parse(row.dataset.path || "null");
    const ok = path !== null && await verify(row.dataset.leaf, +row.dataset.index, head.tree_size, path, head.root_hash);
    cell.className = "proof " + (ok ? "ok" : "bad");
    cell.textContent = ok ? "verified" : (path === null ? "after the head" : "does not verify");
    good += ok ? 1 : 0;
  }
  const summary = document.getElementById("verdict");
  summary.textContent = `${good} of ${rows.length} lines verified against the signed root`;
  summary.className = good === rows.length ? "ok" : "bad";
})();
"""


def _page(
    head: dict[str, Any],
    area: BaseGeometry,
    start: datetime,
    end: datetime,
    lines: list[Line],
    proofs: dict[int, list[str]],
    maps: list[tuple[datetime, dict[str, Any] | str]],
) -> str:
    e = html.escape
    figures = "".join(
        f"<figure>{_svg(area, picture) if isinstance(picture, dict) else e(picture)}"
        f"<figcaption>as of {e(t.isoformat())}</figcaption></figure>"
        for t, picture in maps
    )
    rows = "".join(
        f'<tr data-index="{line.index}" data-leaf="{line.leaf_hex}" data-path="{e(json.dumps(proofs.get(line.index)))}">'
        f"<td>{e(line.time)}</td><td>{e(line.type)}</td><td>{e(line.party or '')}</td><td>{e(line.summary)}</td>"
        f'<td>{line.index}</td><td class="proof">not checked</td></tr>'
        for line in lines
    )
    head_json = json.dumps({k: head[k] for k in ("tree_size", "root_hash", "timestamp", "signature", "public_key")})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Investigation report {e(start.isoformat())} to {e(end.isoformat())}</title>
<style>{_STYLE}</style></head><body>
<h1>Investigation report</h1>
<p>Area {e(json.dumps([round(v, 6) for v in area.bounds]))} (west, south, east, north),
from {e(start.isoformat())} to {e(end.isoformat())}: {len(lines)} entries of the record concern it.</p>
<h2>The area as known</h2><div class="maps">{figures}</div>
<h2>Timeline</h2><p id="verdict">not checked yet</p>
<table><thead><tr><th>time</th><th>event</th><th>by</th><th>what</th><th>entry</th><th>proof</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Signed tree head</h2>
<p>Every line above is an entry of the record; its bytes, hashed and folded with its audit path, give the root
below, which the node signed with its Ed25519 key (signature over the UTF-8 bytes of
{{"root_hash","timestamp","tree_size"}}, sorted keys, no spaces).</p>
<pre id="head">{e(head_json)}</pre>
<script>{_SCRIPT}</script>
</body></html>
"""
