"""gunicorn settings shared by start.sh and deploy.py (the per-slot ones, --bind,
--pid and the log file, are on their command lines).

APP_WORKERS / APP_THREADS (from the scenario's [app].env) size each instance.
"""

import os

workers = int(os.environ.get("APP_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("APP_THREADS", "4"))
# On SIGTERM, workers finish the requests they have; after this many seconds the
# master kills them. deploy.py waits longer than this for the old master to exit.
graceful_timeout = 10
# Two masters run side by side during a deploy: do not let them share one control
# socket in ~/.gunicorn.
control_socket_disable = True
