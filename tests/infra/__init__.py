"""Infra tests. The ``infra`` package is imported first: it sets jsii's variable before any test loads aws_cdk."""

import infra  # noqa: F401
