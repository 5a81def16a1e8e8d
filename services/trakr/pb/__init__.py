"""Generated protobuf code (`make proto`); never edit by hand."""

from __future__ import annotations

from trakr.pb import trakr_pb2

__all__ = ["trakr_pb2"]
