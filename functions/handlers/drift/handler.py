"""Drift job Lambda entry point, run on the stage's schedule (EventBridge): yesterday's window (or the last
``window_days``) of every model with a baseline. Built once at cold start from the environment; the wiring is
functions/handlers/drift/app.py."""

from __future__ import annotations

import os

from functions.handlers.drift.app import create_handler

lambda_handler = create_handler(os.environ)
