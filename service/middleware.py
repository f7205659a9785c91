"""ASGI middleware: the one place that believes forwarded headers, and a cap on request bodies."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORWARDED_HOST = "phoneline.forwarded_host"
"""Scope key: the Host the client asked a trusted proxy for (X-Forwarded-Host)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(setting: str) -> tuple[Network, ...] | None:
    """TRUSTED_PROXIES ("127.0.0.1,10.0.0.0/8,::1") as networks; None for "*" (every peer)."""
    entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
    if "*" in entries:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: str, networks: tuple[Network, ...] | None) -> bool:
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


PEERS_REMEMBERED = 1024


class TrustedProxies:
    """When the peer is one of TRUSTED_PROXIES, take the client address from X-Forwarded-For
    (the nearest address that is not itself a trusted proxy), the scheme from
    X-Forwarded-Proto and the host from X-Forwarded-Host; from anyone else, ignore them.

    One list for everything: the client address staff sign-in throttling counts, the https of
    the session cookie, and the public URL Twilio's signature is checked against (uvicorn's own
    proxy handling is off, so that nothing rewrites the peer before this decides).
    """

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.networks = trusted_networks(trusted)
        self._peers: dict[str, bool] = {}
        """Peer address -> trusted (a proxy's address comes again with every request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self._trusted(client[0]):
            scope = self._forwarded(scope, client)
        await self.app(scope, receive, send)

    def _trusted(self, peer: str) -> bool:
        known = self._peers.get(peer)
        if known is None:
            known = _is_trusted(peer, self.networks)
            if len(self._peers) < PEERS_REMEMBERED:
                self._peers[peer] = known
        return known

    def _forwarded(self, scope: Scope, client: tuple[str, int]) -> Scope:
        headers = _forwarding_headers(scope["headers"])
        scope = dict(scope)
        if chain := headers.get(b"x-forwarded-for"):
            hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
            nearest = next(
                (hop for hop in reversed(hops) if not _is_trusted(hop, self.networks)),
                hops[0] if hops else client[0],
            )
            scope["client"] = (nearest, 0)
        if proto := headers.get(b"x-forwarded-proto"):
            scheme = proto.split(",")[0].strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        if host := headers.get(b"x-forwarded-host"):
            scope[FORWARDED_HOST] = host.split(",")[0].strip()
        return scope


_FORWARDING = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"))


def _forwarding_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The X-Forwarded-* headers (the last of each name), decoded; no other header."""
    return {name: value.decode("latin-1") for name, value in raw if name in _FORWARDING}


class BodyTooLarge(Exception):
    pass


class LimitBodySize:
    """Answer 413 to a request whose body is over `max_bytes`, declared or streamed; a POST to
    a path one of `larger`'s patterns matches may send up to its own limit (an upload)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    def _limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        for pattern, limit in self.larger:
            if scope.get("method") == "POST" and pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope) if self.larger else self.max_bytes
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            if not declared.isdigit() or int(declared) > max_bytes:
                await _too_large(send, max_bytes)
                return
            # The server reads no more than the declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, max_bytes)


async def _too_large(send: Send, max_bytes: int) -> None:
    body = f"Request body too large ({max_bytes // 1024} KB at most)\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
