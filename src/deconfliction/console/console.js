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

  const $ = (id) => document.getElementById(id);
  const state = {
    token: null,
    who: null,
    parties: [],
    colours: {},
    data: { territories: [], aors: [], assets: [], zones: [] },
    cells: {}, // H3 cell id -> GeoJSON polygon, fetched from /v1/cells
    stream: null, // AbortController of the event stream
    cursor: null,
    fitted: false,
    timers: [],
    popupOpen: false,
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
    for (const [name, z] of [["graticule", 350], ["territories", 360], ["aors", 370], ["zones", 380], ["cells", 390],
      ["uncertainty", 395], ["check", 398]]) {
      map.createPane(name).style.zIndex = z;
    }
    for (const name of ["graticule", "territories", "border", "aors", "zones", "cells", "assets", "check"]) {
      layers[name] = L.layerGroup().addTo(map);
    }
    map.setView([34.6, 71.0], 10);
    map.on("moveend zoomend", drawGraticule);
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
  };
  const loaded = { territories: 0, aors: 0, assets: 0, zones: 0 };

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
  }

  // ------------------------------------------------------------------ live: the event stream

  // SSE over fetch(): EventSource cannot send the Authorization header.
  const AFFECTS = [
    [/^(report|asset|position)\./, ["assets"]],
    [/^zone\./, ["zones"]],
    [/^aor\./, ["aors"]],
    [/^grant\./, ["assets", "zones"]],
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
      showAnswer(await api("POST", "/v1/checks", { position, kind: $("check-kind").value }));
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
    for (const g of Object.values(layers)) if (g !== layers.graticule) g.clearLayers();
    for (const id of ["list-aors", "list-assets", "list-zones", "legend", "who"]) $(id).innerHTML = "";
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
    $("check-form").addEventListener("submit", (e) => {
      e.preventDefault();
      runCheck();
    });
    const kept = sessionStorage.getItem(TOKEN_KEY);
    if (kept) signIn(kept).catch(() => signOut("Your token is no longer accepted: sign in again."));
    else $("token").focus();
  });
})();
