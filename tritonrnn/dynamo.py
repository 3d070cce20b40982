"""Let TorchDynamo trace tritonrnn's layers although they are torch.nn.RNN/LSTM/GRU instances.

TorchDynamo refuses to wrap any instance of torch.nn.RNN, GRU or LSTM (a graph break, an
error under ``fullgraph=True``) unless ``torch._dynamo.config.allow_rnn`` is set; the check is
one ``isinstance`` in ``VariableBuilder.wrap_module``. The refusal protects torch.nn's own
forward (``_VF.lstm`` and friends), which Dynamo handles only experimentally. tritonrnn's
layers are such instances (so that user code branching on ``isinstance(m, nn.LSTM)`` takes
the same path for them), but their forward is ordinary traceable code around the custom ops.

``install()`` wraps ``wrap_module`` so that, while it wraps a module whose class derives from
one of tritonrnn's layers, ``allow_rnn`` reads True. Nothing else changes: a torch.nn layer
the user did not convert is refused exactly as before, and a user who set ``allow_rnn``
keeps their setting. Should a torch version move the check elsewhere, ``install()`` returns
False and does nothing (``hook_installed()`` tells); the user's one-line fallback is
``torch._dynamo.config.allow_rnn = True`` (which also lets Dynamo trace unconverted torch.nn
layers).
"""
import functools

_INSTALLED = "_tritonrnn_allows_its_layers"


def hook_installed():
    """True when Dynamo's wrap_module carries the hook."""
    try:
        from torch._dynamo.variables.builder import VariableBuilder
    except ImportError:
        return False
    return getattr(getattr(VariableBuilder, "wrap_module", None), _INSTALLED, False)


def install(layer_classes):
    """Let Dynamo wrap instances of ``layer_classes`` (a tuple of classes). Idempotent.
    Returns True when the hook is in place."""
    try:
        from torch._dynamo import config
        from torch._dynamo.variables.builder import VariableBuilder
    except ImportError:  # a torch without Dynamo
        return False
    wrap_module = getattr(VariableBuilder, "wrap_module", None)
    if wrap_module is None or not hasattr(config, "allow_rnn"):
        return False
    if getattr(wrap_module, _INSTALLED, False):
        return True

    @functools.wraps(wrap_module)
    def wrap_module_allowing_ours(self, value):
        if isinstance(value, layer_classes) and not config.allow_rnn:
            with config.patch(allow_rnn=True):
                return wrap_module(self, value)
        return wrap_module(self, value)

    setattr(wrap_module_allowing_ours, _INSTALLED, True)
    VariableBuilder.wrap_module = wrap_module_allowing_ours
    return True
