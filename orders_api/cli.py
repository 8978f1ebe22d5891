"""``orders-api [--host HOST] [--port PORT]``: serve the API with uvicorn.

Settings come from the environment (see ``orders_api.settings``); ``--host`` / ``--port``
override ``API_HOST`` / ``API_PORT``. A bad setting prints which variable is wrong and exits 2.
Once the stores answered and the socket listens, one line says so:
``orders-api ready on http://HOST:PORT`` (``make run`` tells users to wait for it).
How it serves, and the bounds on what clients may hold, is ``orders_api.server``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from orders_api.app import create_app
from orders_api.server import build_server
from orders_api.settings import load_settings_or_exit
from shared.process.logging_setup import configure_logging, register_secret


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
    build_server(create_app(settings), settings).run()
