"""Bot Framework signing keys, fetched within bounds: the Teams front end checks each token's
signature with them (``bot.teams.front``), and a slow or unreachable key endpoint never becomes a
queue of forged tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from jwt import PyJWK, PyJWKClient, PyJWKClientError

log = structlog.get_logger("signpost.teams")


class KeysUnavailable(Exception):
    """The signing keys could not be fetched just now: the token is refused (401), not waited on."""


class SigningKeys:
    """Bot Framework signing keys from one configured JWKS URL instead of the SDK's built-in ones.

    Bounded so that forged tokens cannot turn a slow or unreachable endpoint into a queue:
    - a key already fetched answers at once, never waiting on a fetch (and is kept through an
      outage: past ``LIFESPAN`` it is refreshed aside, and kept if that fails);
    - at most one fetch is in flight (``TIMEOUT`` seconds at most); requests needing it share it;
    - an unknown key id causes a fetch only if none started in the last ``COOLDOWN`` seconds,
      after a failure as after a success; otherwise it is refused at once.
    PyJWKClient fetches and parses the set; its own cache is not used because it holds one lock
    across cache look-ups and fetches, and its cool-down starts only after a successful fetch.
    """

    TIMEOUT = 5.0
    LIFESPAN = 300.0
    COOLDOWN = 30.0

    def __init__(self, url: str) -> None:
        self._client = PyJWKClient(url, cache_jwk_set=False, timeout=self.TIMEOUT)
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # the last successful fetch
        self._started_at: float | None = None  # the last fetch started, whatever its outcome
        self._fetch: asyncio.Task[bool] | None = None
        self.timer: Callable[[], float] = time.monotonic  # tests move it on

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is not None:
            if self._fetched_at is None or self.timer() - self._fetched_at >= self.LIFESPAN:
                self._start()  # refreshed aside; the key answers now
            return key
        fetch = self._start()
        if fetch is None:
            raise KeysUnavailable("no fetch allowed yet")
        if not await asyncio.shield(fetch):
            raise KeysUnavailable("fetch failed")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise PyJWKClientError("no published key has this id")
        return key

    def _start(self) -> asyncio.Task[bool] | None:
        """The fetch in flight, or a new one if the cool-down allows it, else None."""
        if self._fetch is not None:
            return self._fetch
        now = self.timer()
        if self._started_at is not None and now - self._started_at < self.COOLDOWN:
            return None
        self._started_at = now
        self._fetch = asyncio.create_task(self._refresh())
        return self._fetch

    async def _refresh(self) -> bool:
        try:
            jwk_set = await asyncio.to_thread(self._client.get_jwk_set, True)  # urllib blocks
        except Exception as exc:  # unreachable, timed out, not a key set: keep the last good keys
            log.warning("teams_jwks_unavailable", reason=type(exc).__name__)
            return False
        else:
            self._keys = {k.key_id: k for k in jwk_set.keys if k.key_id and k.public_key_use in ("sig", None)}
            self._fetched_at = self.timer()
            return True
        finally:
            self._fetch = None
