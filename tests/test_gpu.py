"""The first-GPU check (benchmarks/gpu_check.py). Its CUDA tests are the only tests allowed to skip, and only on a
machine without CUDA; the CPU-only behaviour is tested everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import APP

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gpu_check_on_a_machine_without_cuda_says_so_and_exits_0(monkeypatch, capsys):
    from benchmarks import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert "No CUDA device here" in out and "nothing to check" in out


def test_gpu_check_runs_as_a_script():
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--help"], cwd=Path(APP).parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--models" in proc.stdout


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18"])
def test_cuda_equals_cpu(name):
    from benchmarks import gpu_check

    failed = [r for r in gpu_check.check_model(name, quick=True) if not r.passed]
    assert not failed, failed


@pytest.mark.gpu
@needs_cuda
def test_live_filter_on_cuda_equals_opencv():
    from benchmarks import gpu_check

    result = gpu_check.check_live_filter(quick=True)
    assert result.passed, result


@pytest.mark.gpu
@needs_cuda
def test_a_real_cuda_out_of_memory_falls_back_to_the_cpu_with_the_notice():
    from benchmarks import gpu_check

    result = gpu_check.check_out_of_memory()
    assert result.passed, result
    assert "ran on the CPU" in result.note
