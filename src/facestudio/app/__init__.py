"""`facestudio serve`: the web page (gradio) and the HTTP API (FastAPI) on one server.

config   the server's settings (host, token, queue size, retention, resource bounds)
auth     the bearer token guarding every route when one is set
budget   request bodies bounded in size per route, in total, and in time
forms    multipart bodies read into memory, whole, with the upload limits
uploads  the page's upload folder, and the one check on a client's file reference
jobs     the bounded queue and its one worker thread; running jobs stopped when deleted
cost     what one job may cost in the worker's time
messages errors as one line of bounded length
studio   the one loaded model: check (bounded decoding), run, describe, preview faces
api      the /v1 routes and /healthz
ui       the gradio page
server   the app assembled, and run with uvicorn
client   a small standard-library client of the API

Needs the `app` extra (`pip install 'facestudio[app]'`), except `client`.
"""
