"""CardFlow serving: one KServe model class for every step (step_model), the pipeline router (router), the
V2 tensor contract (v2), adaptive batching (batcher), Prometheus metrics (metrics), the HTTP server around
them (app) and the local stack (stack).

KServe's model_server module parses sys.argv when it is imported (`kserve/model_server.py`, at import time);
a CardFlow command's own options (`--model …`) would be taken for abbreviations of KServe's. It is imported
here once, with only the program name in argv.
"""

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve  # noqa: F401
finally:
    sys.argv = _argv
