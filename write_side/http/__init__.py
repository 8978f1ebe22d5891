"""The command half of the HTTP API: ``router`` and the error mapping the app factory installs."""

from write_side.http.errors import install_command_error_handlers
from write_side.http.routes import router

__all__ = ["install_command_error_handlers", "router"]
