"""The command API: one route per command, each a thin translation of HTTP into a command.

Routes hold no error handling (``write_side.http.errors`` maps errors once), no rules (the
handlers enforce them) and no field mapping (each request body makes its own command, in
``models``). Every success answers ``{order_id, version, position}`` with
``ETag: "<version>"`` and ``X-Consistency-Token: <position>``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Response, status

from write_side.commands import (
    OrderCommand,
    PlaceOrder,
    RemoveItem,
    order_id_for_idempotency_key,
)
from write_side.http.deps import CommandContext, Context, CreateContext
from write_side.http.docs import (
    CREATE_PROBLEMS,
    ON_ORDER_PROBLEMS,
    ON_ORDER_WITHOUT_BODY_PROBLEMS,
    SUCCESS_HEADERS,
)
from write_side.http.models import (
    SKU_PATTERN,
    AddItemBody,
    CancelOrderBody,
    ChangeShippingAddressBody,
    CommandAccepted,
    CreateOrderBody,
    RecordPaymentBody,
    ShipOrderBody,
)

router = APIRouter(tags=["commands"])

OrderId = Annotated[UUID, Path(description="the order's id")]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="the SKU to remove")]
_OK: dict[int | str, dict[str, Any]] = {200: {"headers": SUCCESS_HEADERS}}


async def _send(
    context: CommandContext, command: OrderCommand, response: Response
) -> CommandAccepted:
    result = await context.dispatch(command)
    response.headers["ETag"] = f'"{result.version}"'
    response.headers["X-Consistency-Token"] = str(result.position)
    return CommandAccepted(
        order_id=result.order_id, version=result.version, position=result.position
    )


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"headers": {**SUCCESS_HEADERS, "Location": {"description": "/orders/{order_id}"}}},
        **CREATE_PROBLEMS,
    },
)
async def create_order(
    body: CreateOrderBody, response: Response, context: CreateContext
) -> CommandAccepted:
    """Create a draft order (with an Idempotency-Key the order id derives from the key)."""
    key = context.idempotency_key
    order_id = order_id_for_idempotency_key(key) if key else uuid.uuid4()
    command = body.command(order_id, idempotency_key=key, correlation_id=context.correlation_id)
    accepted = await _send(context, command, response)
    response.headers["Location"] = f"/orders/{accepted.order_id}"
    return accepted


@router.post("/orders/{order_id}/items", responses={**_OK, **ON_ORDER_PROBLEMS})
async def add_item(
    order_id: OrderId, body: AddItemBody, response: Response, context: Context
) -> CommandAccepted:
    """Add units of a SKU to a draft order (an SKU already on it gets the quantity added)."""
    return await _send(context, body.command(order_id, **context.fields()), response)


@router.delete(
    "/orders/{order_id}/items/{sku}", responses={**_OK, **ON_ORDER_WITHOUT_BODY_PROBLEMS}
)
async def remove_item(
    order_id: OrderId, sku: SkuPath, response: Response, context: Context
) -> CommandAccepted:
    """Remove a SKU from a draft order."""
    return await _send(
        context, RemoveItem(order_id=order_id, sku=sku, **context.fields()), response
    )


@router.put("/orders/{order_id}/shipping-address", responses={**_OK, **ON_ORDER_PROBLEMS})
async def change_shipping_address(
    order_id: OrderId,
    body: ChangeShippingAddressBody,
    response: Response,
    context: Context,
) -> CommandAccepted:
    """Replace the shipping address of a draft order."""
    return await _send(context, body.command(order_id, **context.fields()), response)


@router.post("/orders/{order_id}/place", responses={**_OK, **ON_ORDER_WITHOUT_BODY_PROBLEMS})
async def place_order(order_id: OrderId, response: Response, context: Context) -> CommandAccepted:
    """Place a draft order that has at least one item; its lines and total are then fixed."""
    return await _send(context, PlaceOrder(order_id=order_id, **context.fields()), response)


@router.post("/orders/{order_id}/payments", responses={**_OK, **ON_ORDER_PROBLEMS})
async def record_payment(
    order_id: OrderId,
    body: RecordPaymentBody,
    response: Response,
    context: Context,
) -> CommandAccepted:
    """Record the payment of a placed order (exactly the outstanding amount)."""
    return await _send(context, body.command(order_id, **context.fields()), response)


@router.post("/orders/{order_id}/ship", responses={**_OK, **ON_ORDER_PROBLEMS})
async def ship_order(
    order_id: OrderId, body: ShipOrderBody, response: Response, context: Context
) -> CommandAccepted:
    """Ship a paid order with the carrier's tracking number."""
    return await _send(context, body.command(order_id, **context.fields()), response)


@router.post("/orders/{order_id}/cancel", responses={**_OK, **ON_ORDER_PROBLEMS})
async def cancel_order(
    order_id: OrderId, body: CancelOrderBody, response: Response, context: Context
) -> CommandAccepted:
    """Cancel an order that has not shipped (a paid one records the refund due)."""
    return await _send(context, body.command(order_id, **context.fields()), response)
