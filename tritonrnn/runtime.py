"""Where the Triton kernels can run, and when a forward pass records torch's own ops instead."""
import torch

from tritonrnn.kernels.config import INTERPRET


def triton_enabled(tensor):
    """True when the Triton kernels handle this tensor: always on CUDA; on CPU only when
    Triton's interpreter is on (TRITON_INTERPRET=1 before triton is imported). Otherwise the
    modules delegate to PyTorch's native implementation with the same weights."""
    return tensor.is_cuda or (INTERPRET and tensor.device.type == "cpu")


def exporting_onnx():
    """True inside torch.onnx.export (either exporter: the torch.export-based default or the
    TorchScript-based one)."""
    return torch.onnx.is_in_onnx_export()


def recording_for_another_runtime():
    """True while torch.onnx.export or torch.jit.trace records the model for a runtime that is
    not Python (onnxruntime, TorchScript): there the layers record torch's own recurrent ops
    (or, where ONNX has no operator for the layer, plain tensor ops), which those runtimes run,
    instead of tritonrnn's custom ops, which only a Python process with tritonrnn imported can
    run. torch.compile and torch.export keep the custom ops."""
    return torch.jit.is_tracing() or exporting_onnx()


def kernels_run(tensor):
    """True when a forward pass on this tensor runs the Triton kernels (as custom ops)."""
    return triton_enabled(tensor) and not recording_for_another_runtime()
