"""Run a module as a child process that ends when its parent ends.

``python -m labelwise.core._child PARENT_PID MODULE ARGS...`` runs ``MODULE`` as
``__main__`` and exits as soon as the process that started it is gone, however that process
ended (SIGKILL and out-of-memory kills included, which run no cleanup). The local llama.cpp
server runs this way, so no command can leave a 2 GB server behind.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

_POLL_S = 0.5


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    # The parent is gone (this process now belongs to init or a subreaper): stop as SIGTERM would.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(1)  # the module ignored SIGTERM


def main() -> None:
    parent, module, *args = sys.argv[1:]
    threading.Thread(target=_watch, args=(int(parent),), name="parent-watch", daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
