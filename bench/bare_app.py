"""The baseline for bench/intake.py: a bare FastAPI endpoint that reads the body and answers 202."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/webhooks/{source}/{integration_key}")
async def receive(source: str, integration_key: str, request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"order_id": len(body), "state": "queued"}, status_code=202)
