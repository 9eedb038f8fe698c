"""`facestudio serve`: the web page (gradio) and the HTTP API (FastAPI) on one server.

config   the server's settings (host, token, queue size, retention)
auth     the bearer token guarding every route when one is set
forms    multipart bodies read into memory, with the upload limits
jobs     the bounded queue and its one worker thread; results kept for a limited time
studio   the one loaded model: check, run, describe, preview faces
api      the /v1 routes and /healthz
ui       the gradio page
server   the app assembled, and run with uvicorn
client   a small standard-library client of the API

Needs the `app` extra (`pip install 'facestudio[app]'`), except `client`.
"""
