"""Sample request data that many tests send, defined once."""

from __future__ import annotations

from typing import Any

# A shipping address as the API accepts it (the JSON of a request body).
ADDRESS: dict[str, Any] = {
    "line1": "1 Main Street",
    "line2": "",
    "city": "Dublin",
    "postal_code": "D01 F5P2",
    "country": "IE",
}
