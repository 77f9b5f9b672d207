"""The console's files as the service serves them: from the package, from this origin only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from deconfliction.app import create_app
from deconfliction.service import Service
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
