"""What a stage-config string may look like: AWS identifiers, image URIs, the Powertools layer."""

from __future__ import annotations

import re
from typing import Final

STAGE_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
REGION_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
ACCOUNT_PATTERN: Final[re.Pattern[str]] = re.compile(r"^\d{12}$")
INSTANCE_TYPE_PATTERN: Final[re.Pattern[str]] = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
POWERTOOLS_LAYER_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):017000801446:layer:"
    r"AWSLambdaPowertoolsPythonV3-(?P<python>python3\d+)-(?P<arch>arm64|x86_64):(?P<version>\d+)$"
)
# The router runs on Runtime.PYTHON_3_14 / ARM_64; a layer built for anything else would not import.
POWERTOOLS_PYTHON: Final[str] = "python314"
POWERTOOLS_ARCH: Final[str] = "arm64"
# {account} and {region} are filled in by CloudFormation, so one stage file serves any account.
ECR_IMAGE_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^(?:\d{12}|\{account\})\.dkr\.ecr\.(?:[a-z0-9-]+|\{region\})\.amazonaws\.com(?:\.cn)?/"
    r"[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})$"
)
S3_URL_PATTERN: Final[re.Pattern[str]] = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
# An IAM role ARN, path included (IAM: path segments and names of letters, digits and +=,.@_-).
IAM_ROLE_ARN_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
)
EMAIL_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Runbook links must open from a pager or an email: an absolute https URL, never a repository path.
HTTPS_URL_PATTERN: Final[re.Pattern[str]] = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?(/[^\s]*)?$")
