// The coordination centre's console: the shared picture on a map, a check tool, live updates.
// Plain JavaScript, no build step. Every request goes to this service (the page's
// Content-Security-Policy allows nothing else). The server parses positions; this page never does.
"use strict";

(function () {
  const TOKEN_KEY = "deconfliction.token";
  const PALETTE = ["#1f5fbf", "#c0392b", "#1e8449", "#7d3c98", "#b9770e", "#117a8b", "#a04000", "#5d6d7e"];
  const STATE_ICON = { fresh: "●", ageing: "◐", stale: "○" };
  const STATUS_ICON = { conflict: "✖", unknown: "?", clear: "✔" };
  const GRATICULE_STEPS = [10, 5, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01];
  const AGES_EVERY_MS = 30000;
  // An activity's state in a word and a symbol (never by colour alone).
  const ACTIVITY_ICON = {
    proposed: "◷", escalated: "⚠", objected: "✖", cleared: "✔", active: "▶", completed: "■", cancelled: "⊘",
  };
  const WAITING = ["proposed", "escalated"]; // answers still missing: a deadline counts down
  const ANSWERABLE = ["proposed", "escalated", "objected", "cleared"]; // docs/activities.md: answers are taken then
  const TIMELINE_S = 6 * 3600;
  const GRID_SPACINGS = [1000, 10000, 100000]; // the finest with at most 25 lines across the view
  const MARK = {
    report: { glyph: "●", word: "report" },
    check: { glyph: "■", word: "check" },
    conflict: { glyph: "✖", word: "conflict" },
    activity: { glyph: "◆", word: "activity" },
    lapse: { glyph: "⚠", word: "AOR lapsed" },
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    who: null,
    parties: [],
    colours: {},
    data: { territories: [], aors: [], assets: [], zones: [], activities: [] },
    answers: {}, // "party/id" -> the last answer's outcome (or refusal) from this page, shown under the activity
    marks: [], // the timeline: { t (ms), kind, text }
    cells: {}, // H3 cell id -> GeoJSON polygon, fetched from /v1/cells
    stream: null, // AbortController of the event stream
    cursor: null,
    fitted: false,
    timers: [],
    popupOpen: false,
    markSeq: 0,
    marked: new Set(), // the log entries already on the timeline
    session: 0,
  };

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || "the service answered " + status);
      this.status = status;
      this.field = e.field || null;
      this.code = e.code || null;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + state.token, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let parsed = null;
    try {
      parsed = await response.json();
    } catch (_) {
      parsed = null;
    }
    if (!response.ok) {
      const error = new ApiError(response.status, parsed);
      if (response.status === 401 && state.token) signOut("Your token is no longer accepted: sign in again.");
      throw error;
    }
    return parsed;
  }

  // ------------------------------------------------------------------ formatting

  function esc(text) {
    return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g, (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]
    );
  }

  function since(iso) {
    if (!iso) return "unknown";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  // A duration in words: "45 s", "9 min 58 s", "3 h 20 min" (seconds shown only under 10 min).
  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function metres(m) {
    if (m === null || m === undefined) return "";
    return m >= 1000 ? (m / 1000).toFixed(2) + " km" : Math.round(m) + " m";
  }

  function partyName(id) {
    const p = state.parties.find((x) => x.id === id);
    return p ? p.name + " (" + id + ")" : id;
  }

  function colour(party) {
    return state.colours[party] || "#555";
  }

  // An asset's position age: stale when the service says so or its stale time has passed,
  // ageing past half-way from its report to its stale time, fresh otherwise.
  function ageState(asset) {
    const now = Date.now();
    if (asset.stale || (asset.stale_at && Date.parse(asset.stale_at) <= now)) return "stale";
    if (asset.stale_at && asset.time) {
      const t = Date.parse(asset.time);
      if (now >= t + (Date.parse(asset.stale_at) - t) / 2) return "ageing";
    }
    return "fresh";
  }

  // An AOR's freshness: lapsed (as the service says), ageing in its last quarter, fresh.
  function aorState(aor) {
    if (aor.status !== "fresh") return "lapsed";
    if (aor.fresh_until && aor.freshness_s) {
      const left = (Date.parse(aor.fresh_until) - Date.now()) / 1000;
      if (left <= 0) return "lapsed";
      if (left < aor.freshness_s / 4) return "ageing";
    }
    return "fresh";
  }

  // ------------------------------------------------------------------ the map

  let map = null;
  const layers = {};

  function tagLayer(layer, attrs) {
    // SVG paths and marker elements carry data-* attributes: what they are, for people's tools and for tests.
    const apply = () => {
      const el = layer.getElement && layer.getElement();
      if (el) for (const [k, v] of Object.entries(attrs)) el.setAttribute("data-" + k, v);
    };
    layer.on("add", apply);
    apply();
    return layer;
  }

  function makeMap() {
    map = L.map("map", { zoomControl: true, attributionControl: false, preferCanvas: false, keyboard: true });
    for (const [name, z] of [["graticule", 350], ["grid", 355], ["territories", 360], ["aors", 370], ["zones", 380], ["cells", 390],
      ["uncertainty", 395], ["activities", 396], ["check", 398]]) {
      map.createPane(name).style.zIndex = z;
    }
    for (const name of ["graticule", "grid", "territories", "border", "aors", "zones", "cells", "assets", "activities", "check"]) {
      layers[name] = L.layerGroup().addTo(map);
    }
    // A site's own tile server, when the console_tiles_url setting names one (the page's policy then allows its
    // origin for images, and nothing else). Without it there are no tiles: the base map is the territories.
    const config = JSON.parse(($("console-config") && $("console-config").textContent) || "{}");
    if (config.tiles_url) {
      layers.tiles = L.tileLayer(config.tiles_url, { maxZoom: 19, className: "tiles" }).addTo(map);
      document.body.dataset.tiles = "on";
    }
    map.setView([34.6, 71.0], 10);
    map.on("moveend zoomend", drawGraticule);
    map.on("moveend", () => {
      document.body.dataset.zoom = String(map.getZoom());
      drawGrid().catch(() => {});
    });
    map.on("click", (e) => {
      $("check-position").value = e.latlng.lat.toFixed(5) + ", " + e.latlng.lng.toFixed(5);
      runCheck();
    });
    map.on("popupopen", () => (state.popupOpen = true));
    map.on("popupclose", () => (state.popupOpen = false));
    L.control.scale({ imperial: false }).addTo(map);
    drawGraticule();
  }

  function drawGraticule() {
    if (!map) return;
    const g = layers.graticule;
    g.clearLayers();
    const b = map.getBounds();
    const span = Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest());
    const step = GRATICULE_STEPS.find((s) => span / s >= 4) || GRATICULE_STEPS[GRATICULE_STEPS.length - 1];
    const digits = step >= 1 ? 0 : step === 0.5 || step === 0.1 ? 1 : 2;
    const style = { pane: "graticule", color: "#8a96a3", weight: 1, opacity: 0.6, dashArray: "2 4", interactive: false };
    const south = Math.max(-85, b.getSouth()), north = Math.min(85, b.getNorth());
    for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
      g.addLayer(tagLayer(L.polyline([[lat, b.getWest()], [lat, b.getEast()]], style), { layer: "graticule" }));
      g.addLayer(label([lat, b.getWest()], lat.toFixed(digits) + "°" + (lat >= 0 ? "N" : "S"), "graticule-label lat"));
    }
    for (let lon = Math.ceil(b.getWest() / step) * step; lon <= b.getEast(); lon += step) {
      g.addLayer(tagLayer(L.polyline([[south, lon], [north, lon]], style), { layer: "graticule" }));
      g.addLayer(label([north, lon], lon.toFixed(digits) + "°" + (lon >= 0 ? "E" : "W"), "graticule-label lon"));
    }
  }

  // The MGRS grid: lines of the UTM zone of the view's centre, computed by the service
  // (GET /v1/grid: a browser offline has no MGRS library), at the spacing readable at this zoom.
  let gridAsked = 0;
  async function drawGrid() {
    if (!map || !state.token) return;
    const b = map.getBounds();
    const west = Math.max(-180, b.getWest()), east = Math.min(180, b.getEast());
    const south = Math.max(-80, b.getSouth()), north = Math.min(84, b.getNorth());
    const mid = (south + north) / 2;
    const wide = Math.max((east - west) * 111320 * Math.cos((mid * Math.PI) / 180), (north - south) * 110574);
    const spacing = GRID_SPACINGS.find((m) => wide / m <= 25);
    const asked = (gridAsked += 1);
    if (!spacing || south >= north || west >= east) {
      layers.grid.clearLayers();
      document.body.dataset.gridSpacing = "none";
      return;
    }
    const area = [west, south, east, north].map((v) => v.toFixed(5)).join(",");
    const grid = await api("GET", "/v1/grid?area=" + area + "&spacing_m=" + spacing);
    if (asked !== gridAsked) return; // the map moved on meanwhile
    layers.grid.clearLayers();
    const style = { pane: "grid", color: "#2e6b7a", weight: spacing === 100000 ? 2 : 1, opacity: 0.55, interactive: false };
    for (const f of grid.features) {
      const p = f.properties;
      layers.grid.addLayer(tagLayer(shape(f.geometry, style), { layer: "mgrs-grid", axis: p.axis, label: p.label }));
      // Eastings labelled at the south edge, northings at the east edge (the graticule has the west and north).
      const at = p.axis === "easting" ? p.label_at : f.geometry.coordinates[f.geometry.coordinates.length - 1];
      layers.grid.addLayer(L.marker(ll(at), {
        pane: "grid", interactive: false, keyboard: false,
        icon: L.divIcon({ className: "mgrs-label mgrs-" + p.axis, html: "<span>" + esc(p.label) + "</span>", iconSize: null }),
      }));
    }
    document.body.dataset.gridSpacing = String(spacing);
    $("grid-zone").textContent = "MGRS grid: zone " + grid.properties.zone + ", lines every " + metres(spacing);
  }

  function label(latlng, text, cls) {
    return L.marker(latlng, {
      pane: "graticule",
      interactive: false,
      keyboard: false,
      icon: L.divIcon({ className: cls, html: esc(text), iconSize: null }),
    });
  }

  // Leaflet wants [lat, lon]; GeoJSON is [lon, lat].
  const ll = (c) => [c[1], c[0]];

  function shape(geometry, style) {
    switch (geometry.type) {
      case "Polygon":
        return L.polygon(geometry.coordinates.map((r) => r.map(ll)), style);
      case "MultiPolygon":
        return L.polygon(geometry.coordinates.map((p) => p.map((r) => r.map(ll))), style);
      case "LineString":
        return L.polyline(geometry.coordinates.map(ll), style);
      case "MultiLineString":
        return L.polyline(geometry.coordinates.map((l) => l.map(ll)), style);
      case "Point":
        return L.circleMarker(ll(geometry.coordinates), Object.assign({ radius: 6 }, style));
      default:
        return L.geoJSON(geometry, { style: () => style });
    }
  }

  // The border: where two territories meet. Leaflet has no geometry library, so the
  // outlines of every territory are drawn strongly; where two touch, that is the border.
  function drawTerritories() {
    layers.territories.clearLayers();
    layers.border.clearLayers();
    for (const t of state.data.territories) {
      const c = colour(t.party);
      const fill = shape(t.area, { pane: "territories", color: c, weight: 0, fillColor: c, fillOpacity: 0.06, interactive: false });
      layers.territories.addLayer(tagLayer(fill, { layer: "territory", party: t.party }));
      const outline = shape(t.area, { pane: "territories", color: "#222", weight: 3, fill: false, interactive: false });
      layers.border.addLayer(tagLayer(outline, { layer: "border", party: t.party }));
      const centre = fill.getBounds().getCenter();
      layers.territories.addLayer(
        L.marker(centre, {
          pane: "territories",
          interactive: false,
          keyboard: false,
          icon: L.divIcon({ className: "territory-label", html: esc(partyName(t.party)) + " territory", iconSize: null }),
        })
      );
    }
  }

  function drawAors() {
    layers.aors.clearLayers();
    const list = $("list-aors");
    list.innerHTML = "";
    for (const a of state.data.aors) {
      const s = aorState(a);
      const c = colour(a.party);
      const style = {
        pane: "aors",
        color: s === "lapsed" ? "#b00020" : c,
        weight: s === "lapsed" ? 4 : 2,
        dashArray: s === "lapsed" ? "10 6" : s === "ageing" ? "6 4" : null,
        fillColor: s === "lapsed" ? "#b00020" : c,
        fillOpacity: s === "lapsed" ? 0.18 : s === "ageing" ? 0.08 : 0.12,
        className: "aor aor-" + s,
      };
      const text = s === "lapsed" ? "LAPSED" : s;
      const poly = shape(a.area, style);
      // Areas show their details on hover and in the list beside the map; a click inside one is a check.
      poly.bindTooltip("AOR " + esc(a.party + "/" + a.id) + ": " + (s === "lapsed" ? "⚠ " : "") + esc(text), {
        permanent: s === "lapsed",
        direction: "center",
        className: "aor-tip aor-tip-" + s,
      });
      layers.aors.addLayer(tagLayer(poly, { layer: "aor", party: a.party, id: a.id, status: s }));
      list.insertAdjacentHTML(
        "beforeend",
        '<li data-layer="aor" data-id="' + esc(a.id) + '" data-status="' + s + '"><span class="badge badge-' + s + '">' +
          (s === "lapsed" ? "⚠ LAPSED" : s === "ageing" ? "◐ ageing" : "● fresh") + "</span> " +
          esc(a.party + "/" + a.id) + (a.confirmed_at ? " · confirmed " + esc(since(a.confirmed_at)) : " · never confirmed") + "</li>"
      );
    }
    drawFreshness();
  }

  // ------------------------------------------------------------------ AOR freshness

  // Per AOR a bar of the time left until it lapses, and the same in words.
  function freshness(a) {
    const now = Date.now();
    if (!a.fresh_until) return { left: 0, fraction: 0, text: "LAPSED: never confirmed", lapsed: true };
    const left = (Date.parse(a.fresh_until) - now) / 1000;
    if (a.status !== "fresh" || left <= 0) {
      return { left: 0, fraction: 0, text: "LAPSED " + duration(-Math.min(left, 0)) + " ago", lapsed: true };
    }
    const fraction = Math.min(1, left / (a.freshness_s || left));
    const word = fraction < 0.25 ? "ageing" : "fresh";
    return { left, fraction, text: word + ", " + duration(left) + " left", lapsed: false, word };
  }

  function drawFreshness() {
    const list = $("aor-freshness");
    list.innerHTML = "";
    for (const a of state.data.aors) {
      const li = document.createElement("li");
      li.dataset.layer = "aor-freshness";
      li.dataset.id = a.id;
      li.dataset.party = a.party;
      li.innerHTML =
        '<span class="fresh-name"><span class="swatch" style="background:' + colour(a.party) + '"></span> ' + esc(a.party + "/" + a.id) +
        '</span><span class="fresh-bar" role="meter" aria-valuemin="0" aria-valuemax="100"><span class="fill"></span></span>' +
        '<span class="fresh-text"></span>';
      list.appendChild(li);
      updateFreshness(li, a);
    }
  }

  function updateFreshness(li, a) {
    const f = freshness(a);
    const s = f.lapsed ? "lapsed" : f.word;
    li.dataset.status = s;
    const bar = li.querySelector(".fresh-bar");
    bar.setAttribute("aria-valuenow", String(Math.round(f.fraction * 100)));
    bar.setAttribute("aria-label", a.party + "/" + a.id + ": " + f.text);
    bar.querySelector(".fill").style.width = (f.fraction * 100).toFixed(1) + "%";
    bar.className = "fresh-bar fresh-" + s;
    li.querySelector(".fresh-text").textContent = (f.lapsed ? "⚠ " : s === "ageing" ? "◐ " : "● ") + f.text;
  }

  function tickFreshness() {
    for (const li of $("aor-freshness").children) {
      const a = state.data.aors.find((x) => x.id === li.dataset.id && x.party === li.dataset.party);
      if (a) updateFreshness(li, a);
    }
  }

  function zoneText(z) {
    let text = z.kind.replace(/_/g, " ") + ": " + (z.name || z.id);
    if (z.window) text += " · " + z.window.start.slice(0, 16).replace("T", " ") + " – " + z.window.end.slice(0, 16).replace("T", " ") + " UTC";
    else text += " · always";
    if (z.altitude_m) text += " · " + z.altitude_m[0] + "–" + z.altitude_m[1] + " m";
    return text;
  }

  function drawZones() {
    layers.zones.clearLayers();
    const list = $("list-zones");
    list.innerHTML = "";
    for (const z of state.data.zones) {
      const c = colour(z.party);
      const text = zoneText(z);
      if (z.area) {
        const protectedKind = z.kind === "no_fire_area" || z.kind === "protected_area";
        let layer;
        if (z.area.type === "LineString" && z.width_m) {
          layer = shape(z.area, { pane: "zones", color: c, weight: 6, opacity: 0.7, dashArray: "12 6" });
        } else {
          layer = shape(z.area, {
            pane: "zones", color: c, weight: 2, fillColor: c, fillOpacity: protectedKind ? 0.25 : 0.1,
            dashArray: protectedKind ? null : "4 4",
          });
        }
        layer.bindTooltip(esc(z.party + "/" + z.id) + " · " + esc(text) + (z.width_m ? " · width " + esc(metres(z.width_m)) : ""));
        layers.zones.addLayer(tagLayer(layer, { layer: "zone", party: z.party, id: z.id, kind: z.kind }));
      }
      list.insertAdjacentHTML(
        "beforeend",
        '<li data-layer="zone" data-id="' + esc(z.id) + '"><span class="swatch" style="background:' + c + '"></span> ' +
          esc(z.party + "/" + z.id) + " · " + esc(text) + (z.area ? "" : " · outline not shared (" + esc(z.disclosure) + ")") + "</li>"
      );
    }
  }

  // ------------------------------------------------------------------ activities

  const activityKey = (a) => a.party + "/" + a.id;

  function countdown(a) {
    if (!WAITING.includes(a.state)) return "";
    const left = (Date.parse(a.deadline) - Date.now()) / 1000;
    return left > 0 ? "Answers due in " + duration(left) : "⚠ Deadline passed " + duration(-left) + " ago";
  }

  function answersText(a) {
    const parts = a.affected.map((p) => {
      const x = a.answers[p];
      if (!x) return esc(p) + ": waiting";
      return esc(p) + ": " + (x.answer === "acknowledged" ? "✔ acknowledged" : "✖ objected" + (x.reason ? " (" + esc(x.reason) + ")" : ""));
    });
    return parts.length ? parts.join(" · ") : "affects no other party";
  }

  function drawActivities() {
    layers.activities.clearLayers();
    const list = $("list-activities");
    // Keep what is being typed in an objection's reason across a redraw.
    const typing = {};
    for (const input of list.querySelectorAll("input.reason")) if (input.value) typing[input.dataset.key] = input.value;
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.id : null;
    list.innerHTML = "";
    if (!state.data.activities.length) list.innerHTML = '<li class="none">none that concern your party</li>';
    for (const a of state.data.activities) {
      const key = activityKey(a);
      const safe = key.replace(/[^A-Za-z0-9_-]/g, "_");
      const c = colour(a.party);
      const mine = state.who && state.who.party === a.party;
      const canAnswer = state.who && a.affected.includes(state.who.party) && ANSWERABLE.includes(a.state);
      for (const v of a.volumes) {
        const style = { pane: "activities", color: c, weight: 2, dashArray: "2 6", fillColor: c, fillOpacity: 0.12 };
        const layer = v.area.type === "Point"
          ? L.circle(ll(v.area.coordinates), Object.assign({ radius: Math.max(v.radius_m || 0, 25) }, style))
          : v.area.type === "LineString" && v.width_m
            ? shape(v.area, Object.assign({}, style, { weight: 8, opacity: 0.6 }))
            : shape(v.area, style);
        layer.bindTooltip("Activity " + esc(key) + " (" + esc(a.kind) + "): " + ACTIVITY_ICON[a.state] + " " + esc(a.state) +
          " · " + esc(v.window.start.slice(0, 16).replace("T", " ")) + " – " + esc(v.window.end.slice(0, 16).replace("T", " ")) + " UTC");
        layers.activities.addLayer(tagLayer(layer, { layer: "activity", party: a.party, id: a.id, state: a.state }));
        if (v.area.type === "Point") {
          // A small volume is a few pixels across at the theatre's zoom: a ring of fixed size says where it is.
          const ring = L.circleMarker(ll(v.area.coordinates), { pane: "activities", radius: 9, color: c, weight: 3, dashArray: "3 3", fill: false });
          ring.bindTooltip("Activity " + esc(key) + ": " + ACTIVITY_ICON[a.state] + " " + esc(a.state));
          layers.activities.addLayer(tagLayer(ring, { layer: "activity-ring", party: a.party, id: a.id }));
        }
      }
      const li = document.createElement("li");
      li.className = "activity";
      li.dataset.layer = "activity";
      li.dataset.party = a.party;
      li.dataset.id = a.id;
      li.dataset.state = a.state;
      let html =
        '<p class="activity-head"><span class="badge activity-state state-' + esc(a.state) + '">' + ACTIVITY_ICON[a.state] + " " + esc(a.state) +
        '</span> <strong>' + esc(key) + "</strong> · " + esc(a.kind) + "</p>" +
        '<p class="activity-purpose">' + esc(a.purpose) + "</p>" +
        '<p class="activity-by">proposed by ' + esc(partyName(a.party)) + (mine ? " (your party)" : "") + " " + esc(since(a.proposed_at)) + "</p>" +
        '<p class="activity-answers">' + answersText(a) + "</p>" +
        '<p class="countdown" data-deadline="' + esc(a.deadline) + '">' + esc(countdown(a)) + "</p>";
      if (a.override) html += '<p class="activity-override">activated with an override: ' + esc(a.override) + "</p>";
      if (a.end_reason) html += '<p class="activity-end">' + esc(a.end_reason) + "</p>";
      if (canAnswer) {
        // Having acknowledged, the party may still change its mind and object (docs/activities.md).
        const acked = a.answers[state.who.party] && a.answers[state.who.party].answer === "acknowledged";
        html +=
          '<div class="answer">' +
          (acked ? "" : '<button type="button" class="ack" id="ack-' + safe + '">✔ Acknowledge</button> ') +
          '<label for="reason-' + safe + '">Reason to object</label>' +
          '<input type="text" class="reason" id="reason-' + safe + '" data-key="' + esc(key) + '" autocomplete="off" aria-describedby="answer-' + safe + '">' +
          '<button type="button" class="obj" id="obj-' + safe + '">✖ Object</button>' +
          "</div>";
      }
      const said = state.answers[key];
      html += '<p class="answer-result' + (said && said.error ? " error" : "") + '" id="answer-' + safe + '" role="status">' +
        (said ? esc(said.text) : "") + "</p>";
      li.innerHTML = html;
      list.appendChild(li);
      if (canAnswer) {
        const reason = li.querySelector("input.reason");
        if (typing[key]) reason.value = typing[key];
        const ack = li.querySelector("button.ack");
        if (ack) ack.addEventListener("click", () => answer(a, null));
        li.querySelector("button.obj").addEventListener("click", () => answer(a, reason));
      }
    }
    if (focused && $(focused)) $(focused).focus();
  }

  async function answer(a, reasonInput) {
    const key = activityKey(a);
    let path = "/v1/activities/" + encodeURIComponent(a.party) + "/" + encodeURIComponent(a.id);
    let body;
    if (reasonInput) {
      const reason = reasonInput.value.trim();
      if (!reason) {
        state.answers[key] = { text: "Give a reason to object.", error: true };
        reasonInput.setAttribute("aria-invalid", "true");
        drawActivities();
        $(reasonInput.id) && $(reasonInput.id).focus();
        return;
      }
      path += "/object";
      body = { reason };
    } else {
      path += "/acknowledge";
    }
    try {
      const done = await api("POST", path, body);
      state.answers[key] = { text: (reasonInput ? "You objected" : "You acknowledged") + ": the activity is now " + done.state + "." };
      if (reasonInput) reasonInput.value = "";
      const i = state.data.activities.findIndex((x) => activityKey(x) === key);
      if (i >= 0) state.data.activities[i] = done;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      state.answers[key] = { text: "Refused: " + err.message, error: true };
    }
    drawActivities();
  }

  function tickCountdowns() {
    for (const el of document.querySelectorAll("#list-activities .countdown")) {
      const li = el.closest("li");
      const a = state.data.activities.find((x) => x.party === li.dataset.party && x.id === li.dataset.id);
      if (a) el.textContent = countdown(a);
    }
  }

  function showNotice(text) {
    const n = $("notice");
    n.querySelector(".text").textContent = text;
    n.hidden = false;
  }

  // ------------------------------------------------------------------ the timeline strip

  // ``seq``: the event's place in the log, when the mark is of one: the backfill and the stream may both bring it.
  function addMark(t, kind, text, seq) {
    if (seq !== undefined) {
      if (state.marked.has(seq)) return;
      state.marked.add(seq);
    }
    state.marks.push({ t, kind, text, n: (state.markSeq += 1) });
    const oldest = Date.now() - TIMELINE_S * 1000;
    state.marks = state.marks.filter((m) => m.t >= oldest).slice(-500);
    drawTimeline();
  }

  // What a stream event puts on the timeline, if anything: [kind, text].
  function markFor(type, d) {
    d = d || {};
    const name = (p, id) => (p ? p + "/" : "") + (id || "?");
    if (type === "report.accepted") return ["report", "report: " + name(d.party, d.asset || d.id)];
    if (type === "aor.lapsed") return ["lapse", "AOR lapsed: " + name(d.party, d.id || d.aor)];
    if (type === "conflict.detected") return ["conflict", "conflict detected in activity " + name(d.proposer || d.party, d.activity || d.id)];
    if (type.startsWith("activity.")) return ["activity", type.replace(".", " ") + ": " + name(d.party, d.id)];
    return null;
  }

  // The hours before sign-in: what the log holds since then, as the party may see it (its own checks stay off).
  async function backfill() {
    const since = new Date(Date.now() - TIMELINE_S * 1000).toISOString();
    const recent = await api("GET", "/v1/events/recent?since=" + encodeURIComponent(since) + "&limit=1000");
    for (const e of recent.events) {
      const mark = markFor(e.type, e.data);
      if (mark) addMark(Date.parse(e.time), mark[0], mark[1], e.seq);
    }
  }

  function drawTimeline() {
    const svg = $("timeline-svg");
    if (!svg) return;
    const w = Math.max(200, svg.clientWidth || 800), h = 64;
    const lanes = Object.keys(MARK); // one row per kind, so that marks close in time stay apart
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    const now = Date.now(), from = now - TIMELINE_S * 1000;
    const x = (t) => 10 + ((t - from) / (TIMELINE_S * 1000)) * (w - 20);
    const ns = svg.namespaceURI; // the SVG namespace, from the element itself
    const el = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    svg.replaceChildren();
    svg.appendChild(el("line", { x1: 10, x2: w - 10, y1: 46, y2: 46, class: "axis" }));
    for (let hr = Math.ceil(from / 3600000) * 3600000; hr <= now; hr += 3600000) {
      const d = new Date(hr);
      svg.appendChild(el("line", { x1: x(hr), x2: x(hr), y1: 4, y2: 50, class: "tick" }));
      if (x(hr) > w - 60) continue; // leave room for "now"
      svg.appendChild(el("text", { x: x(hr), y: 61, class: "tick-label", "text-anchor": "middle" },
        String(d.getUTCHours()).padStart(2, "0") + ":00Z"));
    }
    svg.appendChild(el("text", { x: w - 10, y: 61, class: "tick-label", "text-anchor": "end" }, "now"));
    for (const m of state.marks) {
      if (m.t < from) continue;
      const when = new Date(m.t).toISOString().slice(11, 19) + "Z";
      const label = MARK[m.kind].word + " at " + when + ": " + m.text;
      const g = el("g", { class: "mark mark-" + m.kind, tabindex: "0", role: "img", "aria-label": label, "data-kind": m.kind,
        "data-layer": "mark", transform: "translate(" + Math.min(x(m.t), w - 14).toFixed(1) + "," + (7 + lanes.indexOf(m.kind) * 8) + ")" });
      g.appendChild(el("title", {}, label));
      g.appendChild(el("text", { x: 0, y: 5, "text-anchor": "middle", class: "glyph" }, MARK[m.kind].glyph));
      svg.appendChild(g);
    }
  }

  async function fetchCells(ids) {
    const missing = ids.filter((id) => !state.cells[id]);
    for (let i = 0; i < missing.length; i += 200) {
      const found = await api("GET", "/v1/cells?ids=" + encodeURIComponent(missing.slice(i, i + 200).join(",")));
      for (const f of found.features) state.cells[f.id] = f.geometry;
    }
  }

  async function drawAssets() {
    const coarse = [...new Set(state.data.assets.filter((a) => a.cell).map((a) => a.cell))];
    if (coarse.length) await fetchCells(coarse);
    layers.assets.clearLayers();
    layers.cells.clearLayers();
    const list = $("list-assets");
    list.innerHTML = "";
    for (const a of state.data.assets) {
      const c = colour(a.party);
      const s = ageState(a);
      const ageText = s === "stale" ? "stale, last report " + since(a.time) : s + ", reported " + since(a.time);
      const popup =
        "<strong>" + esc(a.name || a.id) + "</strong> (" + esc(a.kind) + ")<br>id " + esc(a.id) + "<br>" + esc(partyName(a.party)) +
        (a.position ? "<br>MGRS " + esc(a.position.mgrs) + "<br>" + esc(a.position.lat + ", " + a.position.lon) +
          "<br>± " + esc(metres(a.uncertainty_m)) : a.cell ? "<br>coarse: somewhere in cell " + esc(a.cell) : "<br>no position") +
        "<br>" + STATE_ICON[s] + " " + esc(ageText);
      const attrs = { layer: "asset", party: a.party, id: a.id, state: s, disclosure: a.disclosure };
      if (a.position) {
        const at = [a.position.lat, a.position.lon];
        if (a.uncertainty_m) {
          const circle = L.circle(at, {
            pane: "uncertainty", radius: a.uncertainty_m, color: s === "stale" ? "#777" : c, weight: 1, fillOpacity: 0.1, interactive: false,
          });
          layers.assets.addLayer(tagLayer(circle, { layer: "uncertainty", party: a.party, id: a.id }));
        }
        const html =
          '<span class="pin" style="--party:' + (s === "stale" ? "#888" : c) + '" aria-hidden="true">' + STATE_ICON[s] + "</span>" +
          '<span class="name">' + esc(a.id) + (s === "stale" ? " · stale " + esc(since(a.time)) : s === "ageing" ? " · ageing" : "") + "</span>";
        const marker = L.marker(at, {
          icon: L.divIcon({ className: "asset asset-" + s, html, iconSize: null, iconAnchor: [7, 7] }),
          title: a.id + ": " + ageText,
          alt: a.id,
          keyboard: true,
        });
        marker.bindPopup(popup);
        layers.assets.addLayer(tagLayer(marker, attrs));
      } else if (a.cell && state.cells[a.cell]) {
        const poly = shape(state.cells[a.cell], {
          pane: "cells", color: s === "stale" ? "#777" : c, weight: 2, dashArray: "3 3", fillColor: c, fillOpacity: 0.15,
        });
        poly.bindTooltip(popup);
        layers.cells.addLayer(tagLayer(poly, Object.assign({ cell: a.cell }, attrs)));
      }
      list.insertAdjacentHTML(
        "beforeend",
        '<li data-layer="asset" data-id="' + esc(a.id) + '" data-party="' + esc(a.party) + '" data-state="' + s + '">' +
          '<span class="badge badge-' + s + '">' + STATE_ICON[s] + " " + s + "</span> " +
          '<span class="swatch" style="background:' + c + '"></span> ' + esc(a.party + "/" + a.id) +
          (a.position ? " · " + esc(a.position.mgrs) : a.cell ? " · cell " + esc(a.cell) : " · no position") +
          " · " + esc(since(a.time)) + "</li>"
      );
    }
  }

  function drawLegend() {
    $("legend").innerHTML = state.parties
      .map((p) => '<li><span class="swatch" style="background:' + colour(p.id) + '"></span> ' + esc(p.name) + " (" + esc(p.id) + ")</li>")
      .join("");
  }

  // ------------------------------------------------------------------ loading the picture

  const LOADERS = {
    territories: async () => {
      state.data.territories = await api("GET", "/v1/territories");
      drawTerritories();
    },
    aors: async () => {
      state.data.aors = await api("GET", "/v1/aors");
      drawAors();
    },
    assets: async () => {
      state.data.assets = await api("GET", "/v1/assets");
      await drawAssets();
    },
    zones: async () => {
      state.data.zones = await api("GET", "/v1/zones");
      drawZones();
    },
    activities: async () => {
      state.data.activities = await api("GET", "/v1/activities");
      drawActivities();
    },
  };
  const loaded = { territories: 0, aors: 0, assets: 0, zones: 0, activities: 0 };

  async function refresh(name) {
    await LOADERS[name]();
    loaded[name] += 1;
    document.body.dataset["loaded" + name[0].toUpperCase() + name.slice(1)] = String(loaded[name]);
  }

  async function loadAll() {
    state.parties = await api("GET", "/v1/parties");
    state.parties.forEach((p, i) => (state.colours[p.id] = PALETTE[i % PALETTE.length]));
    drawLegend();
    await Promise.all(Object.keys(LOADERS).map(refresh));
    if (!state.fitted) {
      const all = L.featureGroup([...layers.territories.getLayers(), ...layers.aors.getLayers()].filter((l) => l.getBounds));
      if (all.getLayers().length) map.fitBounds(all.getBounds(), { padding: [10, 10] });
      state.fitted = true;
    }
    await drawGrid();
  }

  // ------------------------------------------------------------------ live: the event stream

  // SSE over fetch(): EventSource cannot send the Authorization header.
  const AFFECTS = [
    [/^(report|asset|position)\./, ["assets"]],
    [/^zone\./, ["zones"]],
    [/^aor\./, ["aors"]],
    [/^grant\./, ["assets", "zones"]],
    [/^(activity|conflict)\./, ["activities"]],
  ];
  const pending = new Set();
  let pendingTimer = null;

  function affected(type) {
    for (const [re, names] of AFFECTS) if (re.test(type)) names.forEach((n) => pending.add(n));
    if (pending.size && !pendingTimer) {
      pendingTimer = setTimeout(() => {
        const names = [...pending];
        pending.clear();
        pendingTimer = null;
        names.forEach((n) => refresh(n).catch(showProblem));
      }, 150);
    }
  }

  function setLive(s, text) {
    const el = $("live");
    el.dataset.state = s;
    el.querySelector(".icon").textContent = { live: "●", reconnecting: "↻", off: "○" }[s];
    el.querySelector(".text").textContent = text;
  }

  // One loop per sign-in: signing out (or in again) starts a new session, and the old loop ends.
  async function follow(session) {
    let delay = 1000;
    let first = true;
    const current = () => state.token && state.session === session;
    while (current()) {
      const controller = new AbortController();
      state.stream = controller;
      let watchdog = null;
      const kick = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), 40000); // keep-alives come every 15 s
      };
      try {
        const url = "/v1/events" + (state.cursor === null ? "" : "?cursor=" + state.cursor);
        const response = await fetch(url, {
          headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" },
          signal: controller.signal,
          cache: "no-store",
        });
        if (response.status === 401) {
          signOut("Your token is no longer accepted: sign in again.");
          return;
        }
        if (!response.ok || !response.body) throw new Error("the event stream answered " + response.status);
        kick();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          kick();
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const message = { id: null, event: "message", data: "" };
            for (const line of block.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "data") message.data += (message.data ? "\n" : "") + val;
              else if (field === "id") message.id = val;
              else if (field === "event") message.event = val;
            }
            if (!message.data) continue;
            const data = JSON.parse(message.data);
            if (message.event === "stream.opened") {
              state.cursor = data.data.cursor;
              document.body.dataset.cursor = String(state.cursor);
              setLive("live", "live");
              delay = 1000;
              if (first) {
                await loadAll(); // the picture as of the cursor on; everything after it comes in the stream
                first = false; // (if loading failed, the next connection tries again)
              }
            } else {
              state.cursor = data.seq;
              document.body.dataset.cursor = String(state.cursor);
              affected(message.event);
              const mark = markFor(message.event, data.data);
              if (mark) addMark(data.time ? Date.parse(data.time) : Date.now(), mark[0], mark[1], data.seq);
              if (message.event === "conflict.detected") {
                const d = data.data || {};
                const f = d.found || {};
                showNotice("⚠ Conflict detected in activity " + (d.proposer || d.party) + "/" + (d.activity || d.id) +
                  (f.object ? ": " + f.object + " " + (f.owner || f.party || "") + "/" + (f.id || "?") : "") + ".");
              }
            }
          }
        }
      } catch (err) {
        if (!current()) return;
        if (err instanceof ApiError) showProblem(err);
      } finally {
        clearTimeout(watchdog);
        controller.abort(); // the connection is done with, whatever ended it
      }
      if (!current()) return;
      setLive("reconnecting", "reconnecting… (resuming after event " + state.cursor + ")");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }

  // ------------------------------------------------------------------ the check tool

  function clearCheckErrors() {
    for (const id of ["check-position-error", "check-kind-error", "check-error"]) $(id).textContent = "";
    $("check-position").removeAttribute("aria-invalid");
    $("check-kind").removeAttribute("aria-invalid");
  }

  function finding(f) {
    if (f.disclosure === "hidden") return "something of " + esc(partyName(f.party)) + " that it does not disclose";
    let text = esc(f.object || "") + " " + esc(f.party + "/" + (f.id || "?")) + (f.name ? " (" + esc(f.name) + ")" : "");
    if (f.distance_m !== undefined) text += " · " + esc(metres(f.distance_m)) + " away";
    if (f.distance_band) text += " · " + esc(f.distance_band);
    if (f.position) text += " · " + esc(f.position.mgrs);
    if (f.cell) text += " · cell " + esc(f.cell);
    return text;
  }

  function gapText(g) {
    const reason = { aor_lapsed: "AOR lapsed", stale_asset: "stale position", no_aor: "no area of responsibility declared" }[g.reason] ||
      g.reason.replace(/_/g, " ");
    let text = esc(partyName(g.party)) + ": " + esc(reason);
    if (g.aor) text += " (" + esc(g.aor) + ")";
    if (g.asset) text += " · " + finding(g.asset);
    if (g.since) text += " · since " + esc(since(g.since));
    return text;
  }

  function showAnswer(answer) {
    const status = $("check-status");
    status.dataset.status = answer.status;
    status.className = "status status-" + answer.status;
    status.querySelector(".icon").textContent = STATUS_ICON[answer.status] || "";
    status.querySelector(".text").textContent = answer.status.toUpperCase();
    const p = answer.position;
    const b = answer.border || {};
    const rows = [
      ["Lat, lon", p.lat + ", " + p.lon],
      ["MGRS", p.mgrs],
      ["Territory", b.territory ? partyName(b.territory) : "outside every territory"],
      ["To the border", metres(b.distance_m)],
      ["Kind, buffer", answer.kind + ", " + metres(answer.buffer_m)],
      ["Picture version", answer.picture_version + " · record " + answer.record],
    ];
    $("check-readback").innerHTML = rows.map(([k, v]) => "<dt>" + esc(k) + "</dt><dd>" + esc(v) + "</dd>").join("");
    const none = (what) => '<li class="none">' + what + "</li>";
    $("check-conflicts").innerHTML = answer.conflicts.length
      ? answer.conflicts.map((f) => '<li class="conflict">✖ ' + finding(f) + "</li>").join("")
      : none("none");
    $("check-gaps").innerHTML = answer.gaps.length ? answer.gaps.map((g) => '<li class="gap">? ' + gapText(g) + "</li>").join("") : none("none");
    $("check-result").hidden = false;
    layers.check.clearLayers();
    const c = { conflict: "#b00020", unknown: "#8a6d00", clear: "#1e8449" }[answer.status] || "#333";
    const at = [p.lat, p.lon];
    if (!map.getBounds().contains(at)) map.panTo(at);
    layers.check.addLayer(tagLayer(L.circle(at, { pane: "check", radius: answer.buffer_m, color: c, weight: 3, fillOpacity: 0.08, dashArray: "8 4", interactive: false }),
      { layer: "check-buffer", status: answer.status }));
    layers.check.addLayer(tagLayer(L.circleMarker(at, { pane: "check", radius: 5, color: c, weight: 3, fillOpacity: 1, interactive: false }),
      { layer: "check-point" }));
  }

  async function runCheck() {
    clearCheckErrors();
    const position = $("check-position").value.trim();
    if (!position) {
      $("check-position-error").textContent = "Give a position: decimal, DMS, MGRS or UTM.";
      $("check-position").setAttribute("aria-invalid", "true");
      return;
    }
    const button = $("check-form").querySelector("button");
    button.disabled = true;
    try {
      const answer = await api("POST", "/v1/checks", { position, kind: $("check-kind").value });
      showAnswer(answer);
      addMark(Date.now(), "check", answer.kind + " check at " + answer.position.mgrs + ": " + answer.status.toUpperCase());
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const fieldErr = err.field === "position" ? "check-position-error" : err.field === "kind" ? "check-kind-error" : "check-error";
      $(fieldErr).textContent = err.message;
      if (err.field === "position" || err.field === "kind") $("check-" + err.field).setAttribute("aria-invalid", "true");
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ sign in and out

  function showProblem(err) {
    $("check-error").textContent = err && err.message ? err.message : String(err);
  }

  async function signIn(token) {
    state.token = token;
    let who;
    try {
      who = await api("GET", "/v1/whoami");
    } catch (err) {
      state.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      throw err;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    state.who = who;
    document.body.dataset.signedIn = "true";
    $("signin").hidden = true;
    $("workspace").hidden = false;
    $("signout").hidden = false;
    if (!map) makeMap();
    map.invalidateSize();
    const parties = await api("GET", "/v1/parties");
    state.parties = parties;
    $("who").innerHTML =
      "Signed in: <strong id=\"who-party\">" + esc(who.party ? partyName(who.party) : "the coordination centre") +
      "</strong> · <span id=\"who-role\">" + esc(who.role) + "</span>";
    // Ages move on without events: redraw them now and then, but not under an open popup.
    state.timers.push(setInterval(() => {
      if (state.popupOpen) return;
      drawAssets().catch(() => {});
      drawAors();
    }, AGES_EVERY_MS));
    // Countdowns and freshness bars every second, in place (the answer fields keep their focus).
    state.timers.push(setInterval(() => {
      tickCountdowns();
      tickFreshness();
    }, 1000));
    state.timers.push(setInterval(drawTimeline, AGES_EVERY_MS));
    drawTimeline();
    backfill().catch((err) => { if (err instanceof ApiError) showProblem(err); });
    setLive("reconnecting", "connecting…");
    state.session += 1;
    follow(state.session);
  }

  function signOut(message) {
    state.session += 1;
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.stream) state.stream.abort();
    state.stream = null;
    state.cursor = null;
    state.fitted = false;
    state.timers.forEach(clearInterval);
    state.timers = [];
    for (const g of Object.values(layers)) if (g !== layers.graticule && g !== layers.tiles) g.clearLayers();
    for (const id of ["list-aors", "list-assets", "list-zones", "list-activities", "aor-freshness", "legend", "who", "grid-zone"]) $(id).innerHTML = "";
    state.marks = [];
    state.marked = new Set();
    state.answers = {};
    $("notice").hidden = true;
    $("check-result").hidden = true;
    document.body.dataset.signedIn = "false";
    $("workspace").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    setLive("off", "not connected");
    $("token").value = "";
    $("token").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("signin-error").textContent = "";
      const token = $("token").value.trim();
      if (!token) {
        $("signin-error").textContent = "Enter your party's token.";
        return;
      }
      try {
        await signIn(token);
      } catch (err) {
        $("signin-error").textContent =
          err.status === 401 ? "That token is not accepted by this service. Check it, or ask your administrator for a new one."
            : "Could not sign in: " + err.message;
        $("token").focus();
      }
    });
    $("signout").addEventListener("click", () => signOut("Signed out."));
    $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
    window.addEventListener("resize", drawTimeline);
    $("check-form").addEventListener("submit", (e) => {
      e.preventDefault();
      runCheck();
    });
    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept) signIn(kept).catch(() => signOut("Your token is no longer accepted: sign in again."));
    else $("token").focus();
  });
})();
