"""convert(): swap torch.nn's recurrent layers in an existing model for tritonrnn's."""
import warnings

from torch import nn

from . import modules

# Exact torch.nn class -> tritonrnn counterpart. Each counterpart subclasses its torch.nn class
# and adds no state, so an instance of one is a valid instance of the other.
_COUNTERPARTS = {
    nn.RNN: modules.RNN,
    nn.LSTM: modules.LSTM,
    nn.GRU: modules.GRU,
    nn.RNNCell: modules.RNNCell,
    nn.LSTMCell: modules.LSTMCell,
    nn.GRUCell: modules.GRUCell,
}
_OURS = tuple(_COUNTERPARTS.values())

# A user's subclass of a torch.nn class -> the class built for it (see _converted_class).
_BUILT = {}


def _torch_base(cls):
    """The torch.nn class of _COUNTERPARTS that ``cls`` derives from (the first in its MRO)."""
    return next(base for base in cls.__mro__ if base in _COUNTERPARTS)


def _user_classes(cls):
    """The classes of ``cls``'s MRO that come before its torch.nn base: the user's own code
    (including mixins that derive from torch.nn.RNNBase or from nothing of torch's)."""
    mro = cls.__mro__
    return mro[:mro.index(_torch_base(cls))]


def _why_unsafe(cls):
    """Why a subclass of a torch.nn recurrent class cannot run on tritonrnn's implementation,
    or None when it can: its own code must reach the layer's computation through torch.nn's
    forward (``super().forward(...)`` or ``nn.LSTM.forward(self, ...)``), which is where
    tritonrnn's forward is put."""
    for c in _user_classes(cls):
        forward = c.__dict__.get("forward")
        if forward is None:
            continue
        code = getattr(forward, "__code__", None)
        if code is None:
            return f"{c.__name__}.forward is not a Python function"
        if "forward" not in code.co_names:
            return (f"{c.__name__}.forward never calls torch.nn's forward (super().forward), "
                    f"so it computes the layer itself")
    return None


def _rebuild(user_class):
    """Unpickling a converted subclass: a bare instance of the class built for user_class
    (pickle then restores its __dict__)."""
    built = _converted_class(user_class)
    return built.__new__(built)


def _reduce_ex(self, protocol):
    # The built class is not importable by name; pickle the user's class instead and rebuild.
    _, _, state, *rest = nn.Module.__reduce_ex__(self, protocol)
    return (_rebuild, (type(self).__tritonrnn_user_class__,), state, *rest)


def _converted_class(user_class):
    """A class between ``user_class`` and tritonrnn's counterpart of its torch.nn base:
    MRO built class -> user_class (and its own bases) -> tritonrnn's class -> torch.nn's
    class. The user's methods and attributes stay; ``super().forward`` in them reaches
    tritonrnn's forward. Built once per user class and kept, so converted instances of one
    class share a class."""
    built = _BUILT.get(user_class)
    if built is None:
        ours = _COUNTERPARTS[_torch_base(user_class)]
        built = type(user_class)(user_class.__name__, (user_class, ours), {
            "__module__": user_class.__module__,
            "__qualname__": user_class.__qualname__,
            "__doc__": user_class.__doc__,
            "__tritonrnn_user_class__": user_class,
            "__reduce_ex__": _reduce_ex,
        })
        _BUILT[user_class] = built
    return built


def convert(module):
    """Replace every ``torch.nn.RNN``, ``LSTM``, ``GRU``, ``RNNCell``, ``LSTMCell`` and
    ``GRUCell`` in ``module`` (itself included) by its tritonrnn counterpart; return ``module``.

    Works **in place**: each layer keeps its identity and only changes class, so it keeps the
    very same Parameter objects (an optimizer built before the conversion keeps working), its
    device, dtype, training mode, hooks and any attributes set on it, and every reference to it
    elsewhere in the model sees the new class too. ``convert(nn.LSTM(...))`` returns that
    same object, now a :class:`tritonrnn.LSTM` (still an instance of ``torch.nn.LSTM``).

    A subclass of one of those classes whose own ``forward`` (if any) calls torch.nn's forward
    (``super().forward(...)``) is converted too: its instances get a class built for it that
    derives from the subclass and then from tritonrnn's counterpart, so the subclass's methods
    and attributes stay and its ``super().forward`` runs tritonrnn's implementation. Such
    models pickle as usual (with tritonrnn importable when loading). A subclass whose
    ``forward`` never calls torch.nn's computes the layer itself and is left alone, with a
    warning saying so. Converting a model twice is a no-op. A model with no recurrent layer at
    all is returned unchanged, with a warning.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"convert() expects a torch.nn.Module, got {type(module).__name__}")
    recurrent = 0
    for name, sub in module.named_modules(remove_duplicate=True):
        cls = type(sub)
        if isinstance(sub, _OURS):
            recurrent += 1
        elif cls in _COUNTERPARTS:
            # Same attributes, same parameters; only the class (forward) changes.
            sub.__class__ = _COUNTERPARTS[cls]
            recurrent += 1
        elif isinstance(sub, tuple(_COUNTERPARTS)):
            recurrent += 1
            why = _why_unsafe(cls)
            if why is None:
                try:
                    sub.__class__ = _converted_class(cls)
                    continue
                except TypeError as err:  # e.g. a metaclass or __slots__ layout conflict
                    why = f"no class can derive from both it and tritonrnn's ({err})"
            warnings.warn(
                f"tritonrnn.convert: left {name or 'the model'} ({cls.__name__}, a subclass of "
                f"torch.nn.{_torch_base(cls).__name__}) as it is: {why}", stacklevel=2)
    if recurrent == 0:
        warnings.warn(f"tritonrnn.convert: {type(module).__name__} holds no RNN, LSTM, GRU or "
                      f"recurrent cell; returned unchanged", stacklevel=2)
    return module
