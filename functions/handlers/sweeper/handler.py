"""Sweeper Lambda entry point (scheduled): settles async jobs past their deadline that no notification
settled. Built once at cold start from the environment; the wiring is functions/handlers/sweeper/app.py."""

from __future__ import annotations

from functions.adapters.async_service import async_service_from_env
from functions.handlers.sweeper.app import create_handler

lambda_handler = create_handler(async_service_from_env("sweeper"))
