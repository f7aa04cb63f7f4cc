"""Serving: trained models over HTTP (FastAPI + uvicorn), micro-batched, with a web page. Needs the `serve` extra."""

from .app import ServerSettings, create_app
from .models import ServedModel, load_served_model

__all__ = ["ServedModel", "ServerSettings", "create_app", "load_served_model"]
