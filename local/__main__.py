"""``python -m local``: run the whole system on 127.0.0.1 (what ``make local`` starts)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading

from local.capture import local_capture_dir
from local.log_subscriptions import local_metrics_path
from local.stack import start_local_stack
from ops.targets import LOCAL_STATE_FILE


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--port", type=int, default=3000, help="local API port (default 3000)")
    parser.add_argument("--runtime-port", type=int, default=8080, help="local SageMaker runtime port (default 8080)")
    parser.add_argument("--config", default=None, help="model config file (default functions/models.json)")
    args = parser.parse_args()
    stack = start_local_stack(
        api_port=args.port,
        runtime_port=args.runtime_port,
        config_path=args.config,
        metrics_path=local_metrics_path(),  # python -m ops rollout status --local reads it
        capture_dir=local_capture_dir(),  # python -m ops drift --local reads it
    )
    base = stack.api.url.replace("127.0.0.1", "localhost")
    print(f"local SageMaker runtime: {stack.runtime.url}  (faults: PUT {stack.runtime.url}/_local/faults/<endpoint>)")
    print(f"local API:               {stack.api.url}")
    print("try:")
    print(
        f"  curl -s {base}/v2/models/iris/infer -d "
        '\'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}\''
    )
    print(f"  curl -s {base}/v2/models/iris")
    print(
        f"  curl -si {base}/v2/models/iris/infer -H 'Prefer: respond-async' -d "
        '\'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}\''
        "   # 202, then GET the Location"
    )
    if stack.aws is not None:
        print(f"local AWS (moto):        {stack.aws.url}  (make redrive ARGS=--dry-run, python -m ops --help)")
    LOCAL_STATE_FILE.parent.mkdir(exist_ok=True)
    LOCAL_STATE_FILE.write_text(json.dumps({"pid": os.getpid(), "environment": stack.environment()}, indent=2))
    print("Ctrl-C stops.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    finally:
        LOCAL_STATE_FILE.unlink(missing_ok=True)
        stack.stop()


if __name__ == "__main__":
    main()
