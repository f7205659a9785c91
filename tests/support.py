"""Test helpers: a blocking httpx client over ASGITransport; requests signed as Twilio does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import anyio.from_thread
import httpx
from twilio.request_validator import RequestValidator

TEST_AUTH_TOKEN = "test-auth-token-0123456789abcdef"
TEST_ACCOUNT_SID = "AC" + "0" * 32
PUBLIC_BASE = "https://line.example.org"


def twilio_signature(url: str, params: Mapping[str, str], token: str = TEST_AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
    return str(RequestValidator(token).compute_signature(url, dict(params)))


class AppClient:
    """A blocking client for an ASGI app (httpx's ASGITransport on one event loop).

    After each request it waits for the app's spool (if it has one) to write what the request
    recorded, so a test reads the database as it stands once the records are in.
    """

    def __init__(self, portal: Any, client: httpx.AsyncClient, app: Any = None) -> None:
        self._portal = portal
        self._client = client
        self._spool = getattr(getattr(app, "state", None), "spool", None)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._client.cookies

    @property
    def base_url(self) -> str:
        return str(self._client.base_url).rstrip("/")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            lambda: self._client.request(method, url, **kwargs)
        )
        if self._spool is not None:
            assert self._spool.drain(), "the spool did not write the records in time"
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def twilio(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        token: str = TEST_AUTH_TOKEN,
        signed_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST `params` to `path` signed as Twilio signs it (for `signed_url`, default the URL).
        Twilio sends its AccountSid with every webhook: the test account's unless `params`
        names one."""
        params = {"AccountSid": TEST_ACCOUNT_SID, **params}
        url = path if path.startswith("http") else self.base_url + path
        signature = twilio_signature(signed_url or url, params, token)
        all_headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
            **(headers or {}),
        }
        return self.post(url, content=urlencode(dict(params)), headers=all_headers)


@contextmanager
def app_client(
    app: Any,
    base_url: str = PUBLIC_BASE,
    *,
    wait_for_records: bool = True,
    raise_app_exceptions: bool = True,
) -> Iterator[AppClient]:
    with anyio.from_thread.start_blocking_portal() as portal:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        client = httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False)
        try:
            yield AppClient(portal, client, app if wait_for_records else None)
        finally:
            portal.call(client.aclose)
            if spool := getattr(getattr(app, "state", None), "spool", None):
                spool.close()
