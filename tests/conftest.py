import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests import builders.py


@pytest.fixture
def one_torch_thread():
    """Small batched ops: one torch thread avoids oversubscribing a shared CPU (run_stage sets its own)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
