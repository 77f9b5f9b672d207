"""The console's files as the service serves them: from the package, from this origin only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from deconfliction.app import create_app
from deconfliction.errors import InvalidInput
from deconfliction.service import Service
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Service(MemoryStore()))) as made:
        yield made


def test_the_page_is_served_at_the_root_with_a_policy_that_allows_only_this_origin(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert "http" not in policy  # no other host, by name or by scheme


def test_everything_the_page_loads_is_a_path_of_this_service_and_is_there(client: TestClient) -> None:
    html = client.get("/").text
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    leaflet = ["/console/leaflet/leaflet.css", "/console/leaflet/leaflet.js"]
    assert sorted(loaded) == ["/console/console.css", "/console/console.js", *leaflet]
    for path in loaded:
        assert client.get(path).status_code == 200, path
    assert "L.map" in client.get("/console/console.js").text
    assert client.get("/console/leaflet/images/marker-icon.png").status_code == 200


def test_the_script_asks_only_relative_paths(client: TestClient) -> None:
    script = client.get("/console/console.js").text
    assert re.findall(r"https?://", script) == []
    assert "new EventSource" not in script  # it cannot send the token; the stream is read with fetch()


def test_the_package_files_are_not_served_beyond_the_three(client: TestClient) -> None:
    assert client.get("/console/__init__.py").status_code == 404
    assert client.get("/console/leaflet/../__init__.py").status_code == 404


def test_without_a_tile_url_the_page_has_no_tile_layer(client: TestClient) -> None:
    html = client.get("/").text
    assert '<script id="console-config" type="application/json">{"tiles_url": null}</script>' in html
    assert "L.tileLayer(config.tiles_url" in client.get("/console/console.js").text  # only from the setting


def test_a_tile_url_is_in_the_page_config_and_its_origin_in_the_policy_for_images_only() -> None:
    url = "https://tiles.example.org/osm/{z}/{x}/{y}.png"
    with TestClient(create_app(Service(MemoryStore(), settings=Settings(console_tiles_url=url)))) as client:
        page = client.get("/")
    config = re.search(r'<script id="console-config" type="application/json">(.*?)</script>', page.text)
    assert config is not None and json.loads(config.group(1)) == {"tiles_url": url}
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://tiles.example.org;" in policy
    assert policy.count("tiles.example.org") == 1  # images only: no scripts, styles or connections there


@pytest.mark.parametrize("url", ["ftp://tiles.example.org/{z}/{x}/{y}.png", "tiles/{z}/{x}/{y}.png", "https://a b/{z}"])
def test_a_tile_url_that_is_not_http_is_refused_at_start(url: str) -> None:
    with pytest.raises(InvalidInput, match="console_tiles_url"):
        create_app(Service(MemoryStore(), settings=Settings(console_tiles_url=url)))
