"""The worst bodies at the router's body limit: time to refusal and peak memory growth, each in a fresh process.

Each body is built first, then handed to ``validate_infer_request`` for iris on its async path (the largest
body the router takes, ``LAMBDA_MAX_BODY_BYTES``, whatever the model's sync limit); the figures are the
wall time to the refusal and the growth of the process's peak RSS (``ru_maxrss``) over what it held with the
body built. Target: refused within 100 ms, growth within a few times the body.

    python -m bench.hostile_bodies        # part of make bench
"""

from __future__ import annotations

import subprocess
import sys
from typing import Final

from functions.config.limits import LAMBDA_MAX_BODY_BYTES

# Just under the limit (a body over it is a 413 on its length alone): the most the router ever parses.
SIZE: Final[int] = LAMBDA_MAX_BODY_BYTES - 100
# name -> a Python expression of the body (bytes), SIZE and HEAD (an iris input up to its data's '[') in scope.
BODIES: Final[dict[str, str]] = {
    "open brackets": 'b"[" * SIZE',
    "nested objects": "b'{\"a\":' * (SIZE // 5)",
    "empty lists": 'b"[" + b"[]," * (SIZE // 3 - 1) + b"]"',
    "empty objects": 'b"[" + b"{}," * (SIZE // 3 - 1) + b"]"',
    "duplicate keys": 'b"{" + b\'"a":1,\' * (SIZE // 6 - 1) + b\'"a":1}\'',
    "flat numbers": 'HEAD + b"1.5," * (SIZE // 4 - 30) + b"1]}]}"',
    "escaped quotes": 'b\'{"id":"\' + b\'\\\\"\' * (SIZE // 2 - 10) + b\'","inputs":[]}\'',
    "lone surrogates": 'b\'{"id":"\' + b"\\\\ud800" * (SIZE // 6 - 3) + b\'","inputs":[]}\'',
    "huge datatype": 'HEAD.replace(b"FP32", b"D" * (SIZE - 80)) + b"1,2,3,4]}]}"',
}
CHILD: Final[str] = """
import resource, sys, time
from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.models import load_models_config
from functions.domain.errors import InferenceError
from functions.domain.validation import validate_infer_request
SIZE = {size}
HEAD = b'{{"inputs":[{{"name":"input","shape":[1,4],"datatype":"FP32","data":['
body = {expression}
model = load_models_config().model("iris")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    validate_infer_request(model, body, max_body_bytes=LAMBDA_MAX_BODY_BYTES)
    outcome = "accepted"
except InferenceError as error:
    outcome = error.message[:70]
seconds = time.perf_counter() - started
growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"{{len(body)}}\\t{{seconds * 1000:.1f}}\\t{{growth_kib / 1024:.1f}}\\t{{outcome}}")
"""


def main() -> int:
    print(f"{'body':<16} {'MB':>5} {'ms':>7} {'+peak RSS MiB':>14}  answer")
    worst_ms = worst_growth = 0.0
    for name, expression in BODIES.items():
        code = CHILD.format(size=SIZE, expression=expression)
        line = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        size, ms, growth, outcome = line.rstrip("\n").split("\t")
        worst_ms, worst_growth = max(worst_ms, float(ms)), max(worst_growth, float(growth) * 1024 * 1024 / int(size))
        print(f"{name:<16} {int(size) / 1e6:5.2f} {float(ms):7.1f} {float(growth):14.1f}  {outcome}")
    print(f"worst: {worst_ms:.1f} ms to refusal, peak RSS growth {worst_growth:.1f}x the body")
    return 0


if __name__ == "__main__":
    sys.exit(main())
