"""`POST /webhooks/{source}/{integration_key}`: the only door orders come in through."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.deps import Resources, resources
from app.observability import DELIVERIES
from app.webhooks.service import IntakeResult, receive

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/{source}/{integration_key}",
    status_code=202,
    responses={
        200: {"description": "A repeat of a delivery or of an order already received"},
        400: {"description": "Body is not JSON (stored as a rejected order)"},
        401: {"description": "Missing or bad signature, or a stale timestamp"},
        404: {"description": "Unknown source or integration"},
        413: {"description": "Body over the size limit"},
        422: {"description": "JSON that is not an order (stored as a rejected order)"},
        503: {"description": "The database cannot take the write now; retry"},
    },
)
async def receive_webhook(source: str, integration_key: str, request: Request,
                          res: Annotated[Resources, Depends(resources)]) -> JSONResponse:
    limit = res.settings.max_body_bytes
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        result = IntakeResult(413, detail=f"body is larger than {limit} bytes")
    else:
        try:
            result = await receive(res.sessionmaker, res.intake_cache, source, integration_key, body,
                                   request.headers)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # Not durable, so not acknowledged: a 503 makes the sender retry later.
            log.warning("intake_database_unavailable", source=source, error=type(exc).__name__)
            result = IntakeResult(503, detail="the database cannot take this delivery now; please retry")
    DELIVERIES.labels(source=source, status=str(result.status_code)).inc()
    if result.order_id is not None:
        log.info("delivery", source=source, order_id=result.order_id, state=result.state,
                 status=result.status_code)
    if result.queued and res.relay is not None:
        res.relay.poke()
    headers = {"Retry-After": "30"} if result.status_code == 503 else None
    return JSONResponse(result.body(), status_code=result.status_code, headers=headers)
