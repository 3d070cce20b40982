"""The fallback policy: where a recurrent layer or cell runs (the Triton kernels, torch's own
implementation, or the reference loop), decided here for the modules and the functional API
alike."""
import torch

from tritonrnn.kernels.config import INTERPRET


def triton_enabled(tensor):
    """True when the Triton kernels handle this tensor: always on CUDA; on CPU only when
    Triton's interpreter is on (TRITON_INTERPRET=1 before triton is imported). Otherwise
    layers and cells run PyTorch's native implementation with the same weights."""
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


KERNELS, NATIVE, REFERENCE = "kernels", "native", "reference"


def layer_path(tensor, projects=False):
    """Where a recurrent layer (or cell) with input `tensor` runs:
    KERNELS: the Triton kernels, as custom ops (kernels_run);
    REFERENCE: tritonrnn/reference.py's loop of plain tensor ops, only while torch.onnx.export
      records an LSTM with projections (`projects`), which ONNX has no operator for (torch.nn's
      own export of it fails in onnxruntime);
    NATIVE: torch's own implementation with the same weights (tritonrnn/native.py): where the
      kernels cannot run, and while torch.jit.trace or torch.onnx.export records the model."""
    if kernels_run(tensor):
        return KERNELS
    if projects and exporting_onnx():
        return REFERENCE
    return NATIVE
