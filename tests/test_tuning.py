"""Launch-configuration selection: candidates and pruning, the tuning table (lookup, bucket
fallback, atomic concurrent writes) and the tuner's choice, timed by an injected fake timer."""
import json
import multiprocessing
import os

import pytest
import torch

from bench import tune as tuner
from tritonrnn import tuning
from tritonrnn.kernels import config, dtypes, pruning
from tritonrnn.kernels.cells import CELL_CODES

LSTM, GRU = CELL_CODES["LSTM"], CELL_CODES["GRU"]
SHAPES = [(cell, h) for cell in CELL_CODES.values() for h in (1, 16, 37, 64, 100, 128, 256, 768, 2048)]


@pytest.fixture
def user_table(tmp_path, monkeypatch):
    path = tmp_path / "user_table.json"
    monkeypatch.setenv("TRITONRNN_TUNING_TABLE", str(path))
    monkeypatch.setattr(tuning, "SHIPPED_TABLE", str(tmp_path / "shipped.json"))
    tuning.reload()
    yield str(path)
    tuning.reload()


def _entry(config_plan, hidden=128, bucket=16, cell="LSTM", dtype="fp16", device="GPU-X"):
    return dict(device=device, cell=cell, proj=False, dtype=dtype, hidden=hidden,
                batch_bucket=bucket, config=config_plan.as_dict(), ms=1.0)


@pytest.mark.parametrize("dname", ["fp32", "tf32", "fp16", "bf16"])
def test_every_shape_has_an_unpruned_default(dname, monkeypatch):
    """No shape is left without a launch configuration (with and without projection)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", dname == "tf32")
    dtype = dtypes.torch_dtype(dname)
    for cell, hidden in SHAPES:
        for width in {hidden, max(1, hidden // 4), max(1, hidden - 1)} if cell == LSTM else {hidden}:
            plan = config.default_plan(cell, hidden, width, dtype)
            assert plan in config.candidates(cell, hidden, width, dtype)
            assert not pruning.is_pruned(cell, width != hidden, dname, plan)
            if plan.split:
                assert plan.block_h <= config.block(hidden)


def test_pruned_configs_never_selectable(monkeypatch):
    """Every entry of the shipped pruned list is absent from the candidates of its shape
    (fp32 entries with TF32 off, tf32 entries with it on), or, when it failed only in the
    multi-slice forms, is never the multi-slice plan (unless no candidate of that shape
    compiles clean there: config.multi_slice_plan then takes the widest). ("resident" entries
    change a split layout, not the candidates: tests/test_pruning_versions.py checks them.)"""
    with open(pruning.PRUNED_FILE) as f:
        entries = json.load(f)["configs"]
    assert entries, "the compile report pruned nothing: expected spilling configs to be listed"
    assert {e["forms"] for e in entries} <= {"all", "multi_slice", "resident"}
    for e in entries:
        if e["forms"] == "resident":
            continue
        plan = config.Plan(**e["config"])
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", e["dtype"] == "tf32")
        dtype = dtypes.torch_dtype(e["dtype"])
        for hidden in (16, 32, 64, 128, 256, 512):
            width = max(1, hidden // 4) if e["proj"] else hidden
            cell = CELL_CODES[e["cell"]]
            if e["forms"] == "all":
                assert plan not in config.candidates(cell, hidden, width, dtype)
            elif plan.block_h <= config.block(hidden) and \
                    config.multi_slice_candidates(cell, hidden, width, dtype):
                # the plan exists at this size, and a clean one too (else the widest is taken)
                assert plan != config.multi_slice_plan(cell, hidden, width, dtype)


def test_candidates_bounded_and_conservative_first():
    for cell, hidden in SHAPES:
        everything = config.candidates(cell, hidden, hidden, torch.float16, include_pruned=True)
        assert 1 <= len(everything) <= len(config.FUSED_SPACE) + len(config.SPLIT_SPACE)
        fused = [p for p in everything if not p.split]
        assert everything[:len(fused)] == fused, "fused plans (no exchange of h) come first"


def test_batch_buckets():
    assert [tuning.batch_bucket(b) for b in (1, 2, 3, 16, 17, 256, 257, 10_000)] == \
        [1, 2, 4, 16, 32, 256, 256, 256]


def test_lookup_exact_nearest_and_missing(user_table):
    options = config.candidates(LSTM, 128, 128, torch.float16)
    a, b = options[0], options[-1]
    tuning.write_entries(user_table, [_entry(a, bucket=16), _entry(b, bucket=128)])
    look = lambda batch, **kw: tuning.lookup(LSTM, kw.get("hidden", 128), kw.get("hidden", 128),  # noqa: E731
                                             torch.float16, batch, kw.get("device", "GPU-X"))
    assert look(16) == a and look(9) == a          # same bucket
    assert look(100) == b and look(256) == b       # bucket 128 / nearest above
    assert look(1) == a                            # nearest below-range bucket
    assert look(16, hidden=64) is None             # no entry for this hidden size
    assert look(16, device="GPU-Y") is None        # tuned on another GPU


def test_lookup_ignores_configs_no_longer_selectable(user_table):
    stale = config.Plan(True, 16, 48, 64, 8, 1)  # not in the search space
    tuning.write_entries(user_table, [_entry(stale)])
    assert tuning.lookup(LSTM, 128, 128, torch.float16, 16, "GPU-X") is None


def test_user_table_overrides_shipped(user_table):
    options = config.candidates(GRU, 256, 256, torch.bfloat16)
    tuning.write_entries(tuning.SHIPPED_TABLE,
                         [_entry(options[0], hidden=256, cell="GRU", dtype="bf16")])
    assert tuning.lookup(GRU, 256, 256, torch.bfloat16, 16, "GPU-X") == options[0]
    tuning.write_entries(user_table, [_entry(options[1], hidden=256, cell="GRU", dtype="bf16")])
    assert tuning.lookup(GRU, 256, 256, torch.bfloat16, 16, "GPU-X") == options[1]


def test_decider_asks_the_table_for_a_gpu_launch_with_a_batch(monkeypatch):
    """config.launch imports the tuning table and asks it (no registration at import): only
    for a CUDA device and a batch size; a forced plan wins over it."""
    default = config.default_plan(LSTM, 64, 64, torch.float16)
    assert not default.split
    chosen = config.Plan(False, 16, 64, 64, 2, 1)  # a fused plan no default would pick
    assert default != chosen
    calls = []
    monkeypatch.setattr(tuning, "tuned_plan", lambda *a: calls.append(a) or chosen)
    cuda = torch.device("cuda")
    assert config.launch(LSTM, 64, 64, torch.float16, 8, cuda) == config.Launch(chosen)
    assert config.plan(LSTM, 64, 64, torch.float16, 8, cuda) == chosen
    assert config.plan(LSTM, 64, 64, torch.float16, 8, torch.device("cpu")) == default
    assert config.plan(LSTM, 64, 64, torch.float16, None, cuda) == default
    assert len(calls) == 2
    with config.force_plan(default):
        assert config.plan(LSTM, 64, 64, torch.float16, 8, cuda) == default
    assert len(calls) == 2


def _writer(path, worker):
    entries = [_entry(config.Plan(False, 16, 64, 64, 4, 1), hidden=h, bucket=worker + 1)
               for h in range(10)]
    for entry in entries:
        tuning.write_entries(path, [entry])


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "table.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = tuning.read_table(path)  # valid JSON, and every writer's entries are there
    assert len(entries) == 40
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tuning-")], "temp files left"


def test_tuner_picks_fastest_and_never_times_pruned(monkeypatch):
    """An injected timer stands in for the GPU: the plan with the lowest median wins, a
    candidate that fails to launch is skipped, and only unpruned candidates are timed."""
    timed = []

    def factory(cell, hidden, width, dtype, batch):
        plans = config.candidates(CELL_CODES[cell], hidden, width, dtype)
        fastest = plans[len(plans) // 2]

        def measure(plan):
            timed.append((cell, hidden, dtype, plan))
            if plan == plans[0]:
                raise RuntimeError("out of resources")  # must be skipped, not fatal
            return [1.0, 9.0, 1.0] if plan == fastest else [2.0, 2.0, 0.5]
        return measure

    entries = tuner.tune(["LSTM", "GRU"], ["fp16"], [64, 768], [3, 200], seq=16,
                         device_name="GPU-X", measure_factory=factory, progress=lambda _: None)
    assert len(entries) == 2 * 2 * 2
    for e in entries:
        plans = config.candidates(CELL_CODES[e["cell"]], e["hidden"], e["hidden"], torch.float16)
        assert config.Plan(**e["config"]) == plans[len(plans) // 2]
        assert e["batch_bucket"] in (4, 256) and e["ms"] == 1.0
    for cell, hidden, dtype, plan in timed:
        assert plan in config.candidates(CELL_CODES[cell], hidden, hidden, dtype)


def test_tuner_without_gpu_refuses_unless_dry_run(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the tuner would time instead of refusing")
    assert tuner.main(["--cells", "LSTM", "--dtypes", "fp16", "--hidden", "128"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert tuner.main(["--dry-run", "--cells", "LSTM", "--dtypes", "fp16",
                       "--hidden", "128"]) == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if line.startswith("    ")]
    assert len(listed) == len(config.candidates(LSTM, 128, 128, torch.float16,
                                                include_pruned=True))
    assert "pruned" in out


def test_shipped_table_is_readable():
    """The package ships a table (empty until a GPU tuning run fills it) in the current format."""
    entries = tuning.read_table(tuning.SHIPPED_TABLE)
    for e in entries:
        plan = config.Plan(**e["config"])
        assert plan in config.candidates(CELL_CODES[e["cell"]], e["hidden"], e["hidden"],
                                         dtypes.torch_dtype(e["dtype"]))
