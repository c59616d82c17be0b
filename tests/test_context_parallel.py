"""Context parallelism through Diffusers' `enable_parallelism`, two processes against one.

Ulysses runs on CPU (gloo has all-to-all). Ring attention needs an attention backend that returns the log-sum-exp
under context parallelism; every such backend in Diffusers is a CUDA/NPU kernel (`native` refuses `return_lse`,
`_native_flash` calls the CUDA-only flash op), so the ring test needs two GPUs.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch


WORKER = Path(__file__).with_name("context_parallel_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_two_ranks(tmp_path: Path, mode: str, backend: str) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--master-port", str(free_port()), str(WORKER), "--mode", mode, "--backend", backend]
    result = subprocess.run(
        [*command, "--output", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]


def check_parity(ranks: list[dict], atol: float) -> None:
    for results in ranks:
        # video: 2x4x4 tokens at patch (2, 2, 2); v2a: 24x4 tokens at patch (1, 4). Each rank's blocks see half.
        assert results["video"]["tokens"] == [32, 16] and results["v2a"]["tokens"] == [96, 48]
        for name in ("video", "v2a"):
            assert results[name]["max_abs_diff"] <= atol, (name, results[name])


def test_ulysses_two_processes_match_one(tmp_path):
    check_parity(run_two_ranks(tmp_path, "ulysses", "native"), atol=1e-5)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="ring attention needs a CUDA backend and two GPUs")
@pytest.mark.parametrize("mode", ["ulysses", "ring"])
def test_two_gpus_match_one(tmp_path, mode):
    check_parity(run_two_ranks(tmp_path, mode, "_native_cudnn"), atol=2e-3)
