"""convert(): swap torch.nn's recurrent layers in an existing model for tritonrnn's."""
import warnings

from torch import nn

from . import modules

# Exact torch.nn class -> tritonrnn counterpart. Each pair is built by the same constructor
# code (RNNBase.__init__ or the cell's own) and holds the same attributes, so an instance of
# one is a valid instance of the other.
_COUNTERPARTS = {
    nn.RNN: modules.RNN,
    nn.LSTM: modules.LSTM,
    nn.GRU: modules.GRU,
    nn.RNNCell: modules.RNNCell,
    nn.LSTMCell: modules.LSTMCell,
    nn.GRUCell: modules.GRUCell,
}
_OURS = tuple(_COUNTERPARTS.values())


def convert(module):
    """Replace every ``torch.nn.RNN``, ``LSTM``, ``GRU``, ``RNNCell``, ``LSTMCell`` and
    ``GRUCell`` in ``module`` (itself included) by its tritonrnn counterpart; return ``module``.

    Works **in place**: each layer keeps its identity and only changes class, so it keeps the
    very same Parameter objects (an optimizer built before the conversion keeps working), its
    device, dtype, training mode, hooks and any attributes set on it, and every reference to it
    elsewhere in the model sees the new class too. ``convert(nn.LSTM(...))`` returns that
    same object, now a :class:`tritonrnn.LSTM`.

    Only layers of exactly those classes are converted. A subclass of one of them may override
    ``forward`` or add state that tritonrnn knows nothing about, so it is left alone, with a
    warning. Converting a model twice is a no-op. A model with no recurrent layer at all is
    returned unchanged, with a warning.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"convert() expects a torch.nn.Module, got {type(module).__name__}")
    recurrent = 0
    for name, sub in module.named_modules(remove_duplicate=True):
        target = _COUNTERPARTS.get(type(sub))
        if target is not None:
            # Same attributes, same parameters; only the class (forward) changes.
            sub.__class__ = target
            recurrent += 1
        elif isinstance(sub, _OURS):
            recurrent += 1
        elif isinstance(sub, tuple(_COUNTERPARTS)):
            base = next(cls for cls in _COUNTERPARTS if isinstance(sub, cls))
            warnings.warn(
                f"tritonrnn.convert: left {name or 'the model'} ({type(sub).__name__}) as it "
                f"is: it subclasses torch.nn.{base.__name__}, and its own code may depend on "
                f"torch.nn's implementation", stacklevel=2)
            recurrent += 1
    if recurrent == 0:
        warnings.warn(f"tritonrnn.convert: {type(module).__name__} holds no RNN, LSTM, GRU or "
                      f"recurrent cell; returned unchanged", stacklevel=2)
    return module
