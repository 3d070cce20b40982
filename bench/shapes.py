"""The shapes the benchmark measures: a sweep around the anchor, DeepBench's RNN tables, the
anchor itself with its published reference timings, and the project's speed targets.

Everything here is data (no torch, no GPU), so the plan of a run can be listed and tested on
any machine (``python -m bench --dry-run``).

Dimension legend: B batch, T sequence length, H hidden size, I input size, L layers.
Cells use torch.nn's mode names: LSTM, GRU, RNN_TANH, RNN_RELU.
"""
from dataclasses import dataclass, replace
from itertools import product

# Command-line cell names and the modes each selects. DeepBench's "vanilla" RNN is cuDNN's
# ReLU RNN; the sweeps use torch.nn.RNN's default, tanh.
CELL_FAMILIES = {"LSTM": ("LSTM",), "GRU": ("GRU",), "RNN": ("RNN_TANH", "RNN_RELU")}
SWEEP_MODE = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "RNN_TANH"}


@dataclass(frozen=True)
class Shape:
    cell: str               # LSTM, GRU, RNN_TANH or RNN_RELU
    batch: int
    hidden: int
    seq: int
    input_size: int
    layers: int = 1
    bidirectional: bool = False
    suite: str = "custom"   # where it comes from: sweep-batch, deepbench-inference, anchor, ...

    @property
    def family(self):
        """LSTM, GRU or RNN: the command-line name of the cell."""
        return "RNN" if self.cell.startswith("RNN") else self.cell

    @property
    def tokens(self):
        """Timesteps of all sequences in one call: B * T."""
        return self.batch * self.seq

    def label(self):
        extra = f" L={self.layers}" if self.layers > 1 else ""
        extra += " bidir" if self.bidirectional else ""
        return (f"{self.cell} B={self.batch} H={self.hidden} T={self.seq} "
                f"I={self.input_size}{extra}")


# -- the anchor --------------------------------------------------------------------------------
# LSTM, B=16, T=1024, H=768 in fp16/bf16. Input size is not part of the published figures; we
# take I = H (a stacked layer's input is the previous layer's h).
ANCHOR = Shape("LSTM", batch=16, hidden=768, seq=1024, input_size=768, suite="anchor")
ANCHOR_DTYPES = ("fp16", "bf16")

# Published milliseconds on an H100 at the anchor shape (the figures), by mode.
ANCHOR_REFERENCE_MS = {
    "cuDNN persistent (H100)": {"forward": 2.01, "forward+backward": 5.19},
    "FlashRNN best fused CUDA (H100)": {"forward": 4.87, "forward+backward": 13.61},
}
# Our targets at the anchor on an H100: 2x faster than cuDNN's published times.
ANCHOR_TARGET_MS = {"forward": 1.0, "forward+backward": 2.6}
# The resident-weights issue's targets at the anchor: the model's upper end (python -m
# bench.model, H100 constants), and the bytes a forward step loads under the interpreter, all
# programs together, as a fraction of the count before that design (README, Performance).
ANCHOR_MODEL_TARGET_MS = {"forward": 1.5, "forward+backward": 3.9}
ANCHOR_STEP_BYTES_BEFORE = 7_274_496
ANCHOR_STEP_BYTES_TARGET = 0.15
# Elsewhere: not slower than cuDNN at DeepBench inference shapes with B <= 32, and this many
# times faster than the plain PyTorch time loop everywhere.
DEEPBENCH_TARGET_MAX_BATCH = 32
LOOP_SPEEDUP_TARGET = 20.0


# -- DeepBench (baidu-research/DeepBench, code/kernels/rnn_problems.h) -------------------------
# Its tables list (hidden, batch, timesteps, cell) for one unidirectional layer; its cuDNN
# benchmark skips the input projection (input size = hidden). Our layers always project the
# input, so we run them with I = H. "vanilla" is cuDNN's ReLU RNN. Inference tables are timed
# forward only; the training table forward and forward+backward.

def _grid(cell, hiddens, batches, seqs):
    return [(h, b, t, cell) for h in hiddens for b in batches for t in seqs]


_GRU_LONG = (1500, 750, 375, 187)

DEEPBENCH_TRAINING = (
    _grid("RNN_RELU", (1760, 2048, 2560), (16, 32, 64, 128), (50,))
    + _grid("LSTM", (512, 1024, 2048, 4096), (16, 32, 64, 128), (25,))
    + _grid("LSTM", (1536,), (8, 16, 32), (50,))
    + _grid("LSTM", (256,), (16, 32, 64), (150,))
    # The latest table comments out H=2816 at T=1500 (the earlier one had it).
    + _grid("GRU", (2816,), (32,), (750, 375, 187))
    + _grid("GRU", (2048, 1536, 2560), (32,), _GRU_LONG)
    + _grid("GRU", (512,), (32,), (1,))
    + _grid("GRU", (1024,), (32, 64), (1500,))
)

DEEPBENCH_INFERENCE_SERVER = (
    _grid("LSTM", (512, 1024, 2048), (1, 2, 4), (25,))
    + _grid("LSTM", (1536,), (1, 2, 4), (50,))
    + _grid("LSTM", (256,), (1, 2, 4), (150,))
    + _grid("GRU", (2816, 2048, 1536, 2560), (1, 2, 4), _GRU_LONG)
    + _grid("GRU", (512,), (1, 2, 4), (1,))
    + _grid("GRU", (1024,), (1, 2, 4), (1500,))
)

DEEPBENCH_INFERENCE_DEVICE = (
    (32, 1, 672, "RNN_RELU"),
    (64, 1, 96, "RNN_RELU"),
    (256, 1, 150, "LSTM"),
)


def _deepbench(table, suite):
    return [Shape(cell, batch=b, hidden=h, seq=t, input_size=h, suite=suite)
            for h, b, t, cell in table]


def deepbench_inference():
    return (_deepbench(DEEPBENCH_INFERENCE_SERVER, "deepbench-inference")
            + _deepbench(DEEPBENCH_INFERENCE_DEVICE, "deepbench-inference"))


def deepbench_training():
    return _deepbench(DEEPBENCH_TRAINING, "deepbench-training")


# -- the sweep around the anchor -----------------------------------------------------------------
# One axis at a time, the others held at the anchor's value, so each plot has one x axis.
SWEEP = {
    "batch": (1, 2, 4, 8, 16, 32, 64, 128, 256),
    "hidden": (64, 128, 256, 512, 768, 1024, 2048),
    "seq": (16, 64, 256, 1024, 4096),
}
QUICK_SWEEP = {"batch": (1, 16, 256), "hidden": (64, 768, 2048), "seq": (16, 1024, 4096)}
# (layers, bidirectional) at the anchor's B, H, T.
STACKS = ((1, True), (2, False), (2, True), (4, False))


def sweep(family, axes=SWEEP, stacks=STACKS):
    """Shapes varying one of batch / hidden / seq (input size follows hidden), then depth and
    direction, around the anchor, for one cell family."""
    base = replace(ANCHOR, cell=SWEEP_MODE[family])
    shapes = []
    for axis, values in axes.items():
        for v in values:
            s = replace(base, suite=f"sweep-{axis}", **{axis: v})
            if axis == "hidden":
                s = replace(s, input_size=v)
            shapes.append(s)
    shapes += [replace(base, layers=L, bidirectional=bi, suite="sweep-stack")
               for L, bi in stacks]
    return shapes


def custom_grid(family, batch=None, hidden=None, seq=None, layers=None, bidirectional=None):
    """The product of the given values; dimensions not given keep the anchor's value."""
    return [Shape(SWEEP_MODE[family], batch=b, hidden=h, seq=t, input_size=h, layers=L,
                  bidirectional=bi, suite="custom")
            for b, h, t, L, bi in product(batch or (ANCHOR.batch,), hidden or (ANCHOR.hidden,),
                                          seq or (ANCHOR.seq,), layers or (1,),
                                          bidirectional or (False,))]


# -- what a run measures ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One measurement: a shape in one dtype and mode; every provider is timed on it."""
    shape: Shape
    dtype: str   # fp32, fp16, bf16
    mode: str    # forward (inference) or forward+backward (training)


MODES = ("forward", "forward+backward")
DTYPES = ("fp32", "fp16", "bf16")


def plan(level="default", families=("LSTM", "GRU", "RNN"), dtypes=None, modes=MODES,
         custom=None):
    """The cases of a GPU run, in order.

    level: "quick" (the anchor and a three-point sweep of LSTM, fp16), "default" (the sweep for
    every family, the anchor and DeepBench's inference tables, fp16 and bf16) or "full"
    (DeepBench's training table too, and fp32). ``dtypes`` overrides the level's dtypes;
    ``custom`` (a list of Shapes) replaces the sweep and tables, keeping only the families asked.
    """
    if dtypes is None:
        dtypes = {"quick": ("fp16",), "default": ("fp16", "bf16"), "full": DTYPES}[level]
    modes = tuple(modes)
    wanted_cells = {c for f in families for c in CELL_FAMILIES[f]}
    shaped = []  # (shape, modes it is timed in)
    if custom is not None:
        shaped = [(s, modes) for s in custom]
    else:
        if "LSTM" in families:
            shaped.append((ANCHOR, modes))
        if level == "quick":
            shaped += [(s, modes) for s in sweep("LSTM", QUICK_SWEEP, stacks=((2, True),))
                       if "LSTM" in families]
        else:
            shaped += [(s, modes) for f in families for s in sweep(f)]
            shaped += [(s, ("forward",)) for s in deepbench_inference()]
            if level == "full":
                shaped += [(s, modes) for s in deepbench_training()]
    cases = []
    for shape, shape_modes in shaped:
        if shape.cell not in wanted_cells:
            continue
        cases += [Case(shape, dtype, m) for dtype in dtypes for m in shape_modes if m in modes]
    return cases
