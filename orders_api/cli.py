"""``orders-api [--host HOST] [--port PORT]``: serve the API with uvicorn.

Settings come from the environment (see ``orders_api.settings``); ``--host`` / ``--port``
override ``API_HOST`` / ``API_PORT``. A bad setting prints which variable is wrong and exits 2.
Once the stores answered and the socket listens, one line says so:
``orders-api ready on http://HOST:PORT`` (``make run`` tells users to wait for it).
"""

from __future__ import annotations

import argparse
import logging
import socket
from collections.abc import Sequence

import uvicorn

from orders_api.app import create_app
from orders_api.settings import load_settings_or_exit
from shared.logging_setup import configure_logging, register_secret

log = logging.getLogger("orders_api")
READY_LINE = "orders-api ready on http://%s:%d"


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, saying once when it is ready: after the lifespan (stores reachable)
    and after the socket listens, so a client that waits for the line can connect at once."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for listening in server.sockets:
                host, port = listening.getsockname()[:2]
                log.info(READY_LINE, _url_host(str(host)), port)
                return


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    return port


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orders-api", description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="interface to listen on (default: API_HOST)")
    parser.add_argument("--port", type=_port, help="port to listen on (default: API_PORT)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    overrides = {
        name: value
        for name, value in (("api_host", args.host), ("api_port", args.port))
        if value is not None
    }
    settings = load_settings_or_exit(**overrides)
    if settings.admin_token is not None:  # before any log line (create_app registers it too)
        register_secret(settings.admin_token.get_secret_value())
    configure_logging(settings.log_level, settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # keep the process's logging (JSON or text, with correlation ids)
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    AnnouncingServer(config).run()
