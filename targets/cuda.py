"""This machine's GPU, timed by the worker zipapp in a local subprocess with CUDA events."""

from __future__ import annotations

from targets.cpu import CpuTarget, LocalSettings

__all__ = ["CudaTarget"]


class CudaTarget(CpuTarget):
    """Times models on the first CUDA device: the same worker and protocol as the CPU, with ``device: cuda``.

    The worker loads each artifact onto the GPU, feeds it a GPU tensor and brackets every timed block with
    CUDA events and a synchronization, so a speedup is GPU time over GPU time, interleaved A/B as on the CPU.
    Pairs of kind ``gemm_2_4`` (dense vs 2:4 semi-structured fp16 GEMMs) are only timed here: the worker builds
    their operands on the GPU itself, since TorchScript cannot carry the semi-structured tensor.
    """

    device: str = "cuda"

    def __init__(self, name: str = "cuda", settings: LocalSettings | None = None) -> None:
        super().__init__(name, settings)

    def available(self) -> tuple[bool, str]:
        """Whether a CUDA device is visible; a machine without one skips the target and says why."""
        available, reason = super().available()
        if not available:
            return available, reason
        import torch  # here, not at the top: reading stored results imports `targets` and needs no torch

        if not torch.cuda.is_available():
            build = (
                f"torch {torch.__version__}, CUDA build {torch.version.cuda}"
                if torch.version.cuda
                else f"torch {torch.__version__}, a CPU-only build"
            )
            return False, f"no CUDA device visible to torch ({build})"
        return True, ""
