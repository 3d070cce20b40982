"""tritonrnn: Triton-kernel drop-in replacements for torch.nn's recurrent layers.

``RNN``, ``LSTM``, ``GRU`` and their cells take the same arguments, hold the same parameters
and return the same outputs as their torch.nn namesakes. On CUDA (or on CPU under
``TRITON_INTERPRET=1``) they run Triton kernels; elsewhere they delegate to PyTorch's native
implementation with the same weights.
"""
from importlib.metadata import PackageNotFoundError, version

from .convert import convert
from .modules import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

try:
    __version__ = version("tritonrnn")  # the one version number lives in pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "convert", "__version__"]
