"""HTTP plumbing of the Serve app: the one error shape, and a request body limit.

Example::

    api.add_middleware(BodyLimit)        # a body over BodyLimit.limit bytes gets a 413, unread
    error_response(422, "texts is empty")   # {"error": "texts is empty"} with status 422
"""

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets a 413 and is not read.

    A Content-Length over the limit is refused before any byte is read; a body without one
    (chunked) is counted as it arrives and refused once it passes the limit.
    """

    limit = 1 << 20  # this replica's max_body_bytes (ServeConfig; set by reconfigure)

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            refusal = f"{scope['method']} {scope['path']}: {_too_large(declared.decode(), self.limit)}"
            return await error_response(413, refusal)(scope, receive, send)
        seen = 0

        async def capped_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI hands an HTTPException raised here to _http_error
                raise HTTPException(413, _too_large(f"more than {self.limit}", self.limit))
            return message

        await self.app(scope, capped_receive, send)


def _too_large(size: str, limit: int) -> str:
    return f"body of {size} bytes; the limit is max_body_bytes={limit}: split the request"
