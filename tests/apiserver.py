"""Runs the :class:`~emulator.ApiEmulator` on a loopback port in a thread of its own.

Synchronous clients (the trainer's sink, the kubernetes client) and kopf (in its own thread) talk to it
over HTTP, exactly as to a real API server; the test thread inspects its state between calls. Given an
``ssl.SSLContext`` it serves HTTPS instead, as a real API server does for in-cluster clients (image tests).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.test_utils
import kmock
import yaml

from emulator import ApiEmulator

T = TypeVar("T")


class _TlsTestServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's test server listening with TLS (kmock starts its server without a way to pass one)."""

    def __init__(self, handler: Any, *, tls: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._tls = tls

    async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        await super().start_server(loop=loop, ssl=self._tls, **kwargs)


class ApiServer:
    """An emulated API server; ``url`` and ``kubeconfig`` say how to reach it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.emulator = ApiEmulator()
        self.tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="api-emulator", daemon=True)
        self._server: kmock.Server | None = None
        self.port: int | None = None
        self._thread.start()
        self.call(self.emulator.__aenter__())
        self.start_serving()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start_serving(self) -> None:
        """Listen (again, on the same port after :meth:`stop_serving`), keeping all stored objects."""
        async def start() -> kmock.Server:
            tls = {"server_cls": functools.partial(_TlsTestServer, tls=self.tls)} if self.tls else {}
            server = kmock.Server(self.emulator, port=self.port, **tls)  # type: ignore[call-arg]
            return await server.__aenter__()

        self._server = self.call(start())
        self.port = self._server.port

    def stop_serving(self) -> None:
        """Close the port and every open connection: the API server is unreachable until restarted."""
        if self._server is not None:
            server, self._server = self._server, None

            async def stop() -> None:
                self.emulator.closing = True  # a client reconnecting meanwhile gets no new watch
                self.emulator.drop_watches()
                await server.__aexit__(None, None, None)
                self.emulator.closing = False

            self.call(stop())

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig pointing at this server (no auth), for clients that read KUBECONFIG."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "test-token"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester",
                                                          "namespace": namespace}}],
        }
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def close(self) -> None:
        """Stop serving and end the loop thread."""
        self.stop_serving()
        self.call(self.emulator.__aexit__(None, None, None))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
