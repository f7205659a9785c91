"""The benchmark's yardstick: the least a FastAPI app can do to answer Twilio's webhooks.

It reads the form (as any webhook must) and answers fixed TwiML: a `<Gather>` whose action is
itself, so the same simulated callers walk it; the status callback gets a 204; a text gets a
fixed `<Message>` of the menu's length. No signature
check, no flow, no database. `phoneline serve`'s CPU per webhook is compared with this one's.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="https://line.example.org/twilio/voice" numDigits="1" finishOnKey="">'
    '<Say language="en-US" voice="Polly.Joanna-Neural">To learn why a second opinion helps, '
    "press 1. To find another doctor, press 2.</Say></Gather>"
    '<Say language="en-US" voice="Polly.Joanna-Neural">Goodbye.</Say></Response>'
)

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
def healthz() -> Response:
    return Response("ok", media_type="text/plain")


@app.post("/twilio/voice")
async def voice(request: Request) -> Response:
    await request.form()
    return Response(TWIML, media_type="application/xml")


@app.post("/twilio/voice/status")
async def status(request: Request) -> Response:
    await request.form()
    return Response(status_code=204)


SMS_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Message>VCU Massey Second Opinion Line. '
    "Reply with a number: 1 Why a second opinion 2 Find another doctor 3 Prepare 0 A person. "
    "Reply STOP to opt out.</Message></Response>"
)


@app.post("/twilio/sms")
async def sms(request: Request) -> Response:
    await request.form()
    return Response(SMS_TWIML, media_type="application/xml")
