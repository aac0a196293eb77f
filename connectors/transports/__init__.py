"""Transports: how commands and files reach a machine (this one, or one over SSH)."""

from hpcflow.connectors.transports.base import CommandResult, Transport

__all__ = ["CommandResult", "Transport"]
