"""A small word-level language model trained twice on the same data: once with torch.nn's
LSTM, once after ``tritonrnn.convert``. Both runs start from the same weights, see the same
batches and take the same optimizer steps, so their losses must agree step by step.

    python -m examples.word_lm                # 8 steps, the defaults below
    python -m examples.word_lm --steps 20 --hidden 64

Model: embedding -> 2-layer LSTM -> linear over the vocabulary, trained with truncated
backpropagation through time (the LSTM state is carried from one batch to the next, detached).
Data: sentences generated here from a tiny grammar with a fixed seed; nothing is downloaded.

Where it runs: on CUDA when present (the Triton kernels, compiled). Without CUDA it sets
TRITON_INTERPRET=1 before importing tritonrnn, so the converted model runs the same Triton
kernels on CPU tensors under Triton's interpreter (slow: a check, not a speed measure; the
defaults take ~10 s). With TRITON_INTERPRET=0 on CPU the converted layers would delegate to
PyTorch's native LSTM and the comparison would be torch against itself; the script says which
path it took.
"""
import argparse
import copy
import os
import random

import torch
from torch import nn

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton/tritonrnn are imported

import tritonrnn  # noqa: E402
from tritonrnn import runtime  # noqa: E402

SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher"]
VERBS = ["sees", "likes", "follows", "draws", "hears", "finds", "remembers"]
OBJECTS = ["the river", "a red ball", "the moon", "an apple", "the garden", "a song"]
ENDINGS = ["at night", "in the park", "every day", "near the house", "again", ""]


def make_corpus(sentences, seed=0):
    """A list of words: `sentences` random sentences from the grammar above, each ending in
    '<eos>'."""
    rng = random.Random(seed)
    words = []
    for _ in range(sentences):
        parts = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS),
                 rng.choice(ENDINGS)]
        words += " ".join(p for p in parts if p).split() + ["<eos>"]
    return words


def batchify(words, batch):
    """Token ids as `batch` parallel streams: ([B, N] ids, vocabulary list)."""
    vocab = sorted(set(words))
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([index[w] for w in words])
    n = len(ids) // batch
    return ids[:n * batch].view(batch, n), vocab


class WordLM(nn.Module):
    def __init__(self, vocab_size, embed=16, hidden=32, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens, state=None):  # tokens: [B, T] -> logits [B, T, V]
        y, state = self.lstm(self.embed(tokens), state)
        return self.head(y), state


def train(model, streams, steps, seq_len, lr=1.0):
    """Plain SGD with gradient clipping, truncated BPTT over consecutive windows of the
    streams ([B, N] ids). Returns the loss of every step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    device = next(model.parameters()).device
    state, losses = None, []
    for step in range(steps):
        start = (step * seq_len) % (streams.shape[1] - seq_len - 1)
        inputs = streams[:, start:start + seq_len].to(device)
        targets = streams[:, start + 1:start + seq_len + 1].to(device)
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(inputs, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


def compare(steps=8, batch=4, seq_len=8, embed=16, hidden=32, sentences=200, device=None,
            seed=0):
    """Train the torch.nn model and its converted copy; returns (torch.nn losses, tritonrnn
    losses, the trained torch.nn model, the trained converted model)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    streams, vocab = batchify(make_corpus(sentences, seed), batch)
    torch.manual_seed(seed)
    reference = WordLM(len(vocab), embed, hidden).to(device)
    converted = tritonrnn.convert(copy.deepcopy(reference))
    ref_losses = train(reference, streams, steps, seq_len)
    return ref_losses, train(converted, streams, steps, seq_len), reference, converted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=8)
    parser.add_argument("--embed", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if present)")
    args = parser.parse_args()
    ref_losses, our_losses, reference, model = compare(
        args.steps, args.batch, args.seq_len, args.embed, args.hidden, device=args.device)
    probe = next(model.parameters())
    if probe.is_cuda:
        path = f"Triton kernels on {torch.cuda.get_device_name(probe.device)}"
    elif runtime.triton_enabled(probe):
        path = "Triton kernels under the interpreter on CPU (a check, not a speed measure)"
    else:
        path = "CPU without TRITON_INTERPRET: PyTorch's native LSTM on both sides"
    print(f"tritonrnn {tritonrnn.__version__}, torch {torch.__version__}; {path}")
    print(f"{'step':>4}  {'torch.nn loss':>14}  {'tritonrnn loss':>14}  {'|difference|':>12}")
    for step, (a, b) in enumerate(zip(ref_losses, our_losses)):
        print(f"{step:>4}  {a:>14.6f}  {b:>14.6f}  {abs(a - b):>12.2e}")
    worst = max(abs(a - b) for a, b in zip(ref_losses, our_losses))
    # Equal losses to print precision; the weights show the two really computed separately
    # (float32 rounding differs between the kernels and PyTorch's LSTM).
    weights = max((p - q).abs().max().item()
                  for p, q in zip(reference.parameters(), model.parameters()))
    print(f"largest loss difference {worst:.2e}; largest weight difference after training "
          f"{weights:.2e}")


if __name__ == "__main__":
    main()
