"""The CDK app that deploys the router (``python -m infra.app``; cdk.json runs it).

Every process that loads aws-cdk-lib here imports this package first (the app, the findings CLI, the infra
tests), so the one setting jsii needs is made here, before any ``aws_cdk`` import.
"""

import os

# jsii prints a page-long end-of-life banner on Node 20 in every process that loads aws-cdk-lib; the CLI pin
# in package.json is tested on it. The Makefile exports the same for the processes it starts.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
