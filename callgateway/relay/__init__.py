"""The relay process: Twilio's ConversationRelay WebSocket, served by its own ASGI app.

`app.py` (the Starlette app and its one route, `/twilio/relay`), `handshake.py` (the
signature on the WebSocket handshake), `session.py` (one call's socket: setup, prompts,
interruptions, the end), `speech.py` (a reply as sentence-sized text tokens). The call
core's side of the channel (the TwiML, one session per call, the `<Connect>` action) is
`callgateway/calls/relay.py`; the turn itself is the engine's.
"""
