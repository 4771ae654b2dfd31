"""The error answers of Azure's DICOM service: `{"message": ...}` JSON, or an empty body."""

from __future__ import annotations

import json

from starlette.responses import Response


class DicomError(Exception):
    def __init__(self, status: int, message: str | None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or "")
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self) -> Response:
        if self.message is None:
            return Response(b"", status_code=self.status, headers=self.headers)
        body = json.dumps({"message": self.message})
        return Response(body.encode(), status_code=self.status, headers=self.headers,
                        media_type="application/json; charset=utf-8")
