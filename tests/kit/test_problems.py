"""The route class's own answers: a method a path does not take."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from pixwave.app import create_app
from pixwave.kit.problems import PixWaveRoute
from tests.conftest import make_settings


async def _options(app: FastAPI, path: str, method: str = "OPTIONS") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pixwave.test") as client:
        return await client.request(method, path)


class TestMethodNotAllowed:
    async def test_allow_names_every_method_of_the_path(self) -> None:
        """`GET` and `POST /v1/users` are two routes: a 405 there allows both, not one."""
        response = await _options(create_app(make_settings()), "/v1/users")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "method_not_allowed"

    async def test_a_path_with_parameters_too(self) -> None:
        """The methods of a templated path are gathered the same way."""
        response = await _options(create_app(make_settings()), "/v1/webhook-endpoints/whe_x", "PUT")
        assert response.headers["allow"] == "DELETE, GET"

    async def test_routes_of_an_included_router(self) -> None:
        """Routes of a router included in another are found where FastAPI nests them."""
        inner = APIRouter(prefix="/v1", route_class=PixWaveRoute)

        @inner.get("/things")
        async def list_things() -> list[str]:
            return []

        @inner.delete("/things")
        async def delete_things() -> None:
            return None

        outer = APIRouter(route_class=PixWaveRoute)
        outer.include_router(inner)
        app = FastAPI()
        app.include_router(outer)
        response = await _options(app, "/v1/things", "POST")
        assert response.status_code == 405
        assert response.headers["allow"] == "DELETE, GET"
