"""The console as a liaison officer uses it: sign in, look at the map, ask a check, watch the picture move.

Everything here runs in Debian's Chromium against a real ``deconflict serve`` holding the demo
picture (see conftest.py). bravo's liaison signs in; alfa's coarse sites appear as their H3
cells, alfa's hidden post not at all; the relief agency's reports arrive while the page is open.
Elements on the map carry ``data-layer`` and ``data-id`` attributes (the SVG paths and the
markers), which is what these tests look at.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.console.conftest import ROOT, Served

LOADED = "body[data-loaded-assets][data-loaded-aors][data-loaded-zones][data-loaded-territories][data-loaded-activities]"
# Selectors, not script: the page's Content-Security-Policy forbids evaluating strings, the tests' too.


def sign_in(page: Any, served: Served, who: str = "bravo") -> None:
    page.goto("/")
    page.get_by_label("Party token").fill(served.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(LOADED, state="attached")
    page.wait_for_selector('#live[data-state="live"]')


def relief_moves_clinic(served: Served, position: str) -> httpx.Response:
    """relief reports its clinic at ``position`` through the API, as another client would, while the page is open."""
    moved = httpx.post(
        f"{served.url}/v1/reports",
        headers={"Authorization": f"Bearer {served.tokens['relief']}"},
        json={"asset": "clinic", "position": position},
        timeout=10,
    )
    assert moved.status_code == 201, moved.text
    return moved


def on_map(page: Any, layer: str, **attrs: str) -> Any:
    """The map's elements of one layer (SVG paths and markers), narrowed by data-* attributes."""
    selector = f'#map [data-layer="{layer}"]' + "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    return page.locator(selector)


def shot(page: Any, served: Served, name: str) -> None:
    page.screenshot(path=str(served.shots / f"{name}.png"))


def test_a_liaison_signs_in_and_sees_the_shared_picture(page: Any, served: Served) -> None:
    sign_in(page, served)
    assert "Bravo Coalition" in page.locator("#who-party").inner_text()
    assert page.locator("#who-role").inner_text() == "liaison"
    # The two territories, each outlined: where they meet is the border.
    for party in ("alfa", "bravo"):
        assert on_map(page, "territory", party=party).count() == 1
        assert on_map(page, "border", party=party).count() == 1
    # Both AORs, fresh (said in words as well as in colour).
    assert on_map(page, "aor", id="alfa-border", status="fresh").count() == 1
    assert on_map(page, "aor", id="bravo-east", status="fresh").count() == 1
    assert page.locator('#list-aors [data-id="bravo-east"]').inner_text().startswith("● fresh")
    # bravo's own unit exactly, with its uncertainty circle; the relief agency's clinic too.
    assert on_map(page, "asset", id="tf-alpha", party="bravo", state="fresh", disclosure="exact").count() == 1
    assert on_map(page, "uncertainty", id="tf-alpha").count() == 1
    assert on_map(page, "asset", id="clinic", party="relief").count() == 1
    # alfa's coarse post as the H3 cell it is in, not as a point.
    boulder = on_map(page, "asset", id="boulder", disclosure="coarse")
    assert boulder.count() == 1
    assert boulder.evaluate("e => e.tagName") == "path"
    assert re.fullmatch(r"[0-9a-f]{15}", boulder.get_attribute("data-cell"))
    # alfa's hidden post: nowhere on the page.
    assert page.locator('[data-id="volcano"]').count() == 0
    assert "volcano" not in page.content().lower()
    # Zones with their kind, and the graticule.
    assert on_map(page, "zone", id="village-nfa", kind="no_fire_area").count() == 1
    assert on_map(page, "zone", id="convoy", kind="route").count() == 1
    assert on_map(page, "graticule").count() >= 4
    shot(page, served, "signed-in")


def test_an_asset_shows_its_details_in_a_popup(page: Any, served: Served) -> None:
    sign_in(page, served)
    on_map(page, "asset", id="tf-alpha").click()
    popup = page.locator(".leaflet-popup-content")
    text = popup.inner_text()
    assert "Task Force Alpha" in text and "Bravo Coalition (bravo)" in text
    assert "MGRS 42S XD 81685 24367" in text
    assert "fresh, reported" in text


def test_a_bad_token_is_refused_with_a_message(page: Any, served: Served) -> None:
    page.goto("/")
    page.get_by_label("Party token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_contain_text("not accepted")
    assert page.locator("#workspace").is_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    shot(page, served, "refused")


def test_the_token_lives_in_the_session_only_and_sign_out_forgets_it(page: Any, served: Served) -> None:
    sign_in(page, served)
    assert page.evaluate("sessionStorage.getItem('deconfliction.token')") == served.tokens["bravo"]
    assert page.evaluate("localStorage.length") == 0
    page.reload()  # the same tab keeps it
    page.wait_for_selector(LOADED, state="attached")
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#signin").is_visible()
    assert on_map(page, "asset").count() == 0


def test_a_check_typed_as_an_mgrs_grid_answers_with_status_and_read_back(page: Any, served: Served) -> None:
    sign_in(page, served)
    page.get_by_label("Position (decimal, DMS, MGRS or UTM)").fill("42S XD 85335 26098")
    page.get_by_label("Kind").select_option("fires")
    page.get_by_role("button", name="Check", exact=True).click()
    status = page.locator('#check-status[data-status="conflict"]')
    assert status.inner_text().strip() == "✖ CONFLICT"
    readback = page.locator("#check-readback").inner_text()
    assert "42S XD 85335 26098" in readback
    assert "34.559947, 71.0201307" in readback
    assert "Alfa Army (alfa)" in readback  # the side of the border
    assert "1.85 km" in readback  # the distance to it
    conflicts = page.locator("#check-conflicts").inner_text()
    assert "alfa/boulder" in conflicts and "under 250 m" in conflicts
    assert "does not disclose" in conflicts  # the hidden post counts, but says nothing of itself
    assert "volcano" not in page.content().lower()
    assert on_map(page, "check-buffer", status="conflict").count() == 1
    shot(page, served, "check-conflict")
    if os.environ.get("DECONFLICT_UPDATE_DOCS") == "1":  # the README's picture, only when asked for
        shutil.copyfile(served.shots / "check-conflict.png", ROOT / "docs" / "console.png")


def test_clicking_the_map_checks_the_clicked_point(page: Any, served: Served) -> None:
    sign_in(page, served)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    typed = page.get_by_label("Position (decimal, DMS, MGRS or UTM)").input_value()
    assert re.fullmatch(r"-?\d+\.\d{5}, -?\d+\.\d{5}", typed)
    page.wait_for_selector("#check-status[data-status]:not([data-status=''])")
    assert page.locator("#check-status").inner_text().strip() in ("✖ CONFLICT", "? UNKNOWN", "✔ CLEAR")
    assert page.locator("#check-readback").inner_text().count("42S") == 1
    assert on_map(page, "check-buffer").count() == 1


def test_an_unreadable_position_is_refused_next_to_the_field(page: Any, served: Served) -> None:
    sign_in(page, served)
    page.get_by_label("Position (decimal, DMS, MGRS or UTM)").fill("somewhere near the river")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.locator("#check-position-error")).to_contain_text("cannot read 'somewhere near the river' as a position")
    assert page.get_by_label("Position (decimal, DMS, MGRS or UTM)").get_attribute("aria-invalid") == "true"
    assert page.locator("#check-result").is_hidden()


def test_a_report_posted_through_the_api_appears_without_reloading(page: Any, served: Served) -> None:
    sign_in(page, served)
    assert page.locator("#live").inner_text().strip() == "● live"
    clinic = page.locator('#list-assets [data-id="clinic"]')
    assert "42S XD 92340 41782" in clinic.inner_text()
    moved = relief_moves_clinic(served, "34.7100, 71.1100")
    mgrs = moved.json()["position"]["mgrs"]
    page.locator('#list-assets [data-id="clinic"]', has_text=mgrs).wait_for()
    assert on_map(page, "asset", id="clinic").count() == 1
    shot(page, served, "live-report")


def test_the_page_asks_nothing_of_any_host_but_the_service(page: Any, served: Served) -> None:
    sign_in(page, served)
    page.get_by_label("Position (decimal, DMS, MGRS or UTM)").fill("34.55, 70.95")
    page.get_by_role("button", name="Check", exact=True).click()
    page.wait_for_selector("#check-status[data-status]:not([data-status=''])")
    on_map(page, "asset", id="tf-alpha").click()
    assert page.requests, "the page made no request at all"
    elsewhere = [url for url in page.requests if not url.startswith(served.url + "/")]
    assert elsewhere == []
    assert any("/console/leaflet/leaflet.js" in url for url in page.requests)
    # No tile server is set: no tile layer at all.
    assert page.locator(".leaflet-tile").count() == 0 and page.locator("body").get_attribute("data-tiles") is None


def test_an_aor_that_lapses_stands_out_without_reloading(page: Any, served: Served) -> None:
    sign_in(page, served)
    relief = {"Authorization": f"Bearer {served.tokens['relief']}"}
    box = [[71.09, 34.69], [71.12, 34.69], [71.12, 34.72], [71.09, 34.72], [71.09, 34.69]]
    area = {"type": "Polygon", "coordinates": [box]}
    with httpx.Client(base_url=served.url, headers=relief, timeout=10) as client:
        assert client.post("/v1/aors", json={"id": "clinic-area", "area": area, "freshness_s": 4}).status_code == 201
        assert client.post("/v1/aors/clinic-area/confirm").status_code == 200
    aor = on_map(page, "aor", id="clinic-area")
    expect(aor).to_have_attribute("data-status", re.compile("fresh|ageing"))
    expect(page.locator('#aor-freshness [data-id="clinic-area"] .fresh-text')).to_contain_text(re.compile(r"\d s left|LAPSED"))
    # The promise runs out after 4 s; the server's tick says so on the stream, and the page shows it.
    expect(aor).to_have_attribute("data-status", "lapsed", timeout=10_000)
    expect(page.locator('#list-aors [data-id="clinic-area"]')).to_contain_text("⚠ LAPSED")
    expect(page.locator(".aor-tip-lapsed")).to_contain_text("relief/clinic-area: ⚠ LAPSED")
    # The freshness panel: an empty bar, and the same in words, counting on.
    bar = page.locator('#aor-freshness [data-id="clinic-area"]')
    expect(bar).to_have_attribute("data-status", "lapsed")
    expect(bar.locator(".fresh-text")).to_have_text(re.compile(r"⚠ LAPSED \d+ s ago"))
    assert bar.locator('[role="meter"]').get_attribute("aria-valuenow") == "0"
    expect(page.locator('#aor-freshness [data-id="bravo-east"] .fresh-text')).to_have_text(
        re.compile(r"● fresh, 1[12] h \d+ min left")
    )
    assert page.locator('#timeline-svg [data-kind="lapse"]').count() == 1
    shot(page, served, "aor-lapsed")


def test_a_lost_connection_says_so_and_catches_up_from_its_cursor(page: Any, served: Served) -> None:
    sign_in(page, served)
    live = page.locator("#live")
    cursor = page.locator("body").get_attribute("data-cursor")
    served.server.kill()
    expect(live).to_have_attribute("data-state", "reconnecting")
    expect(live).to_contain_text(f"reconnecting… (resuming after event {cursor})")
    shot(page, served, "reconnecting")
    served.server.start()
    moved = relief_moves_clinic(served, "34.7200, 71.1200")
    expect(live).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator('#list-assets [data-id="clinic"]')).to_contain_text(moved.json()["position"]["mgrs"])
    # It asked for the events after the last one it had seen, so nothing written meanwhile is lost.
    assert f"GET /v1/events?cursor={cursor} " in served.server.log.read_text()


def test_a_position_ages_from_fresh_to_ageing_to_stale_in_words_and_symbols(page: Any, served: Served) -> None:
    sign_in(page, served)
    now = datetime.now(UTC)
    relief = {"Authorization": f"Bearer {served.tokens['relief']}"}
    with httpx.Client(base_url=served.url, headers=relief, timeout=10) as client:
        for unit, hours, where in (("ambulance-1", 1, "34.8000, 71.2000"), ("ambulance-2", 3, "34.8200, 71.2200")):
            made = client.post(
                "/v1/assets",
                json={"id": unit, "kind": "unit", "position": where, "time": (now - timedelta(hours=hours)).isoformat(),
                      "stale_after_s": 7200},
            )  # fmt: skip
            assert made.status_code == 201, made.text
    ageing, stale = on_map(page, "asset", id="ambulance-1"), on_map(page, "asset", id="ambulance-2")
    expect(ageing).to_have_attribute("data-state", "ageing")  # an hour into its two: past half-way
    expect(stale).to_have_attribute("data-state", "stale")
    assert ageing.inner_text() == "◐ambulance-1 · ageing"
    assert stale.inner_text() == "○ambulance-2 · stale 3.0 h ago"  # greyed, and says since when
    assert "asset-stale" in stale.get_attribute("class")
    expect(page.locator('#list-assets [data-id="ambulance-2"]')).to_contain_text("○ stale")
    expect(page.locator('#list-assets [data-id="ambulance-1"]')).to_contain_text("◐ ageing")
    shot(page, served, "ages")


def test_the_controls_have_labels_and_work_from_the_keyboard(page: Any, served: Served) -> None:
    page.goto("/")
    unlabelled = page.locator("input, select").evaluate_all("els => els.filter(e => e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    page.keyboard.type(served.tokens["bravo"])  # the token field has the focus on arrival
    page.keyboard.press("Enter")
    page.wait_for_selector(LOADED, state="attached")
    page.get_by_label("Position (decimal, DMS, MGRS or UTM)").focus()
    page.keyboard.type("34°33'00\"N 70°58'00\"E")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "check-kind"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Check button
    expect(page.locator("#check-status")).to_have_attribute("data-status", re.compile("conflict|unknown|clear"))
    assert "34.55, 70.9666667" in page.locator("#check-readback").inner_text()


def alfa_proposes(served: Served, activity_id: str, position: str = "34.6000, 71.0050") -> dict[str, Any]:
    """alfa proposes a fire mission next to the border through the HTTP API: a look for the key, then the proposal."""
    alfa = {"Authorization": f"Bearer {served.tokens['alfa']}"}
    now = datetime.now(UTC)
    window = {"start": now.isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    with httpx.Client(base_url=served.url, headers=alfa, timeout=10) as client:
        key = client.get("/v1/picture?area=70.9,34.5,71.1,34.7&kind=fires").json()["picture_key"]
        made = client.post(
            "/v1/activities",
            json={"id": activity_id, "kind": "fires", "purpose": "fire mission on a vehicle park", "key": key,
                  "volumes": [{"position": position, "radius_m": 100, "window": window}]},
        )  # fmt: skip
    assert made.status_code == 201, made.text
    activity: dict[str, Any] = made.json()
    return activity


def test_an_activity_proposed_by_alfa_appears_live_and_bravo_acknowledges_it(page: Any, served: Served) -> None:
    sign_in(page, served)
    made = alfa_proposes(served, "strike-ack")
    assert made["state"] == "proposed" and made["affected"] == ["bravo"], made
    item = page.locator('#list-activities [data-party="alfa"][data-id="strike-ack"]')
    expect(item).to_have_attribute("data-state", "proposed")
    text = item.inner_text()
    assert "◷ proposed" in text and "alfa/strike-ack" in text and "fires" in text
    assert "fire mission on a vehicle park" in text and "Alfa Army (alfa)" in text and "bravo: waiting" in text
    countdown = item.locator(".countdown")
    expect(countdown).to_contain_text(re.compile(r"Answers due in 9 min \d+ s"))
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3_000)  # it counts down by itself
    assert on_map(page, "activity", id="strike-ack", state="proposed").count() == 1
    # On the timeline: the proposal, as an activity step.
    assert page.locator('#timeline-svg [data-kind="activity"]').count() >= 1
    shot(page, served, "activity-proposed")
    item.get_by_role("button", name="Acknowledge").click()
    expect(item.locator(".answer-result")).to_contain_text("You acknowledged: the activity is now cleared.")
    expect(item).to_have_attribute("data-state", "cleared")
    expect(item.locator(".activity-state")).to_have_text("✔ cleared")
    assert item.locator(".countdown").inner_text() == ""  # nothing to wait for any more
    expect(item.get_by_role("button", name="Acknowledge")).to_have_count(0)  # done; objecting is still open
    assert item.get_by_role("button", name="Object").count() == 1
    expect(on_map(page, "activity", id="strike-ack")).to_have_attribute("data-state", "cleared")
    shot(page, served, "activity-cleared")


def test_an_objection_needs_a_reason_and_a_refusal_is_shown(page: Any, served: Served) -> None:
    sign_in(page, served)
    alfa_proposes(served, "strike-obj", position="34.6100, 71.0050")
    item = page.locator('#list-activities [data-party="alfa"][data-id="strike-obj"]')
    expect(item).to_have_attribute("data-state", "proposed")
    item.get_by_role("button", name="Object").click()
    expect(item.locator(".answer-result")).to_contain_text("Give a reason to object.")
    assert item.get_attribute("data-state") == "proposed"
    item.get_by_label("Reason to object").fill("B Company holds the ridge")
    item.get_by_role("button", name="Object").click()
    expect(item).to_have_attribute("data-state", "objected")
    expect(item.locator(".activity-answers")).to_contain_text("bravo: ✖ objected (B Company holds the ridge)")
    # alfa cancels it: answers are closed, the buttons go.
    alfa = {"Authorization": f"Bearer {served.tokens['alfa']}"}
    cancelled = httpx.post(f"{served.url}/v1/activities/alfa/strike-obj/cancel", headers=alfa, json={}, timeout=10)
    assert cancelled.status_code == 200, cancelled.text
    expect(item).to_have_attribute("data-state", "cancelled")
    expect(item.get_by_role("button", name="Acknowledge")).to_have_count(0)


def test_a_refused_answer_is_shown_under_the_activity(page: Any, served: Served) -> None:
    admin = {"Authorization": f"Bearer {served.tokens['admin']}"}
    made = httpx.post(f"{served.url}/v1/parties/bravo/tokens", headers=admin, json={"role": "viewer"}, timeout=10)
    assert made.status_code == 201, made.text
    served.tokens["bravo-viewer"] = made.json()["token"]
    alfa_proposes(served, "strike-viewer", position="34.6200, 71.0050")
    sign_in(page, served, "bravo-viewer")
    item = page.locator('#list-activities [data-party="alfa"][data-id="strike-viewer"]')
    item.get_by_role("button", name="Acknowledge").click()
    expect(item.locator(".answer-result")).to_contain_text("Refused:")
    assert "error" in item.locator(".answer-result").get_attribute("class")
    assert item.get_attribute("data-state") == "proposed"


def test_the_timeline_shows_a_report_and_a_check_as_focusable_marks(page: Any, served: Served) -> None:
    """It starts with the hours before sign-in (the demo picture's reports), then goes on live."""
    sign_in(page, served)
    report = page.locator('#timeline-svg [data-kind="report"]')
    expect(report.first).to_be_attached()  # written before this page signed in
    before = report.count()
    relief_moves_clinic(served, "34.7150, 71.1150")
    expect(report).to_have_count(before + 1)
    newest = report.last.get_attribute("aria-label")
    assert "report" in newest and "relief/clinic" in newest
    page.get_by_label("Position (decimal, DMS, MGRS or UTM)").fill("42S XD 85335 26098")
    page.get_by_role("button", name="Check", exact=True).click()
    check = page.locator('#timeline-svg [data-kind="check"]')
    expect(check).to_have_count(1)
    assert "fires check at 42S XD 85335 26098: CONFLICT" in check.locator("title").text_content()
    check.focus()
    assert page.evaluate("document.activeElement.getAttribute('data-kind')") == "check"
    shot(page, served, "timeline")


def test_the_mgrs_grid_is_drawn_at_the_spacing_readable_at_the_zoom(page: Any, served: Served) -> None:
    sign_in(page, served)
    body = page.locator("body")
    expect(body).to_have_attribute("data-grid-spacing", "10000")  # the whole theatre: 10 km lines
    assert on_map(page, "mgrs-grid", axis="easting").count() >= 3
    assert on_map(page, "mgrs-grid", axis="northing").count() >= 3
    assert page.locator(".mgrs-label", has_text=re.compile(r"^X[CD] \d$")).count() >= 3
    expect(page.locator("#grid-zone")).to_have_text("MGRS grid: zone 42S, lines every 10.00 km")
    zoom = int(body.get_attribute("data-zoom"))
    for step in (1, 2, 3):  # about 15 km across; one step at a time (a click while zooming is lost)
        page.get_by_role("button", name="Zoom in").click()
        expect(body).to_have_attribute("data-zoom", str(zoom + step))
    expect(body).to_have_attribute("data-grid-spacing", "1000")
    expect(page.locator(".mgrs-label", has_text=re.compile(r"^X[CD] \d\d$")).first).to_be_visible()
    shot(page, served, "mgrs-grid")


def test_a_unit_entering_an_active_mission_raises_a_notice_live(page: Any, served: Served) -> None:
    """bravo's console: alfa's fire mission is cleared and active, then bravo's own task force moves into it."""
    sign_in(page, served)
    alfa = {"Authorization": f"Bearer {served.tokens['alfa']}"}
    bravo = {"Authorization": f"Bearer {served.tokens['bravo']}"}
    alfa_proposes(served, "strike-hot", position="34.6200, 71.0050")
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.post("/v1/activities/alfa/strike-hot/acknowledge", headers=bravo).status_code == 200
        key = client.get("/v1/picture?area=70.9,34.5,71.1,34.7&kind=fires", headers=alfa).json()["picture_key"]
        started = client.post("/v1/activities/alfa/strike-hot/activate", headers=alfa, json={"key": key})
        assert started.status_code == 200, started.text
        item = page.locator('#list-activities [data-party="alfa"][data-id="strike-hot"]')
        expect(item).to_have_attribute("data-state", "active")
        notice = page.locator("#notice")
        assert notice.is_hidden()
        moved = client.post("/v1/reports", headers=bravo, json={"asset": "tf-alpha", "position": "34.6200, 70.9950"})
        assert moved.status_code == 201, moved.text
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Conflict detected in activity alfa/strike-hot")
    expect(notice).to_contain_text("tf-alpha")
    assert page.locator('#timeline-svg [data-kind="conflict"]').count() >= 1
    shot(page, served, "conflict-notice")
