"""Quiet third-party logging: TensorFlow Lite / absl / glog lines from MediaPipe's native code,
warp's CUDA-driver warning, and the Python loggers of absl and warp.

Native libraries write to file descriptor 2 directly, past Python's logging, so
:func:`silence_third_party` routes fd 2 through a pipe whose reader thread drops the known noise
lines (:data:`NATIVE_NOISE`) and forwards everything else (errors, tracebacks, worker output)
unchanged. Python's own ``sys.stderr`` keeps writing to the terminal, so progress bars are
untouched. The CLI calls it unless ``-v`` is given.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

#: what marks a line of native libraries that carries no information for a vtonpipe user; searched
#: anywhere in the line, as two native threads writing at once can merge their lines into one
NATIVE_NOISE = re.compile(
    rb"[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-]+:\d+\] "  # absl / glog INFO and WARNING lines
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|Warp CUDA warning: Could not find or load the NVIDIA CUDA driver"
)
_installed = False


def silence_third_party() -> None:
    """Drop third-party noise from stderr for the rest of the process (and the worker processes
    it starts, which inherit fd 2). Does nothing when stderr is not the process's own (tests)."""
    global _installed
    if _installed or sys.stderr is not sys.__stderr__:
        return
    for name in ("absl", "warp", "tensorflow", "mediapipe"):
        logging.getLogger(name).setLevel(logging.ERROR)
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = sys.__stderr__ = open(terminal, "w", buffering=1, encoding=sys.__stderr__.encoding, errors="backslashreplace", closefd=False)
    thread = threading.Thread(target=_forward, args=(read_end, terminal), name="vtonpipe-stderr-filter", daemon=True)
    thread.start()
    _installed = True

    def restore() -> None:
        os.dup2(terminal, 2)  # closes this process's write end; the reader drains the rest
        thread.join(timeout=2)

    atexit.register(restore)


def _forward(read_end: int, terminal: int) -> None:
    with open(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line for line in lines if not NATIVE_NOISE.search(line)]
            if kept:
                os.write(terminal, b"\n".join(kept) + b"\n")
        if pending and not NATIVE_NOISE.search(pending):
            os.write(terminal, pending)
