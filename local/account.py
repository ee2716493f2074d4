"""The one AWS account every local emulator answers for: its id, its region and the fake credentials that
keep local clients away from any real account whatever the shell has set."""

from __future__ import annotations

from typing import Final

ACCOUNT_ID: Final[str] = "123456789012"
REGION: Final[str] = "us-east-1"
FAKE_CREDENTIALS: Final[dict[str, str]] = {
    "aws_access_key_id": "local",
    "aws_secret_access_key": "local",
    "aws_session_token": "local",
}
