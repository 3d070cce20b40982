"""PackedSequence <-> padded conversions that torch.compile can trace.

torch's ``pad_packed_sequence`` and ``pack_padded_sequence`` are on TorchDynamo's skip list
(each is a graph break). Both conversions are gathers whose sizes are known without reading
batch_sizes' values, given the batch size B: T is len(batch_sizes), the packed row count is the
packed data's length. B itself is the length of sorted_indices, or of the given initial state;
only a sorted PackedSequence without an initial state makes us read batch_sizes[0].

Layouts: packed data [N, *] holds the rows of step 0, then step 1, ...; step t has
batch_sizes[t] rows, the first batch_sizes[t] (longest) sequences. Padded is [T, B, *].
"""
import torch


def batch_size(batch_sizes, sorted_indices, state):
    """B of a PackedSequence, without reading batch_sizes when another tensor's shape says it.
    state: the initial h (or None)."""
    if sorted_indices is not None:
        return sorted_indices.shape[0]
    if state is not None:
        return state.shape[1]
    return int(batch_sizes[0])


def unpack(data, batch_sizes, batch):
    """(padded [T, B, *] with zeros past each length, lengths int64 [B] on the CPU) from packed
    data [N, *]; as pad_packed_sequence (time-major, still in sorted order)."""
    sizes = batch_sizes.to(data.device)
    starts = torch.cumsum(sizes, 0) - sizes                          # [T] first row of step t
    cols = torch.arange(batch, device=data.device)
    valid = cols.unsqueeze(0) < sizes.unsqueeze(1)                   # [T, B]
    rows = (starts.unsqueeze(1) + cols.unsqueeze(0)).clamp(max=data.shape[0] - 1)
    padded = data[rows]                                              # [T, B, *]
    mask = valid.view(*valid.shape, *([1] * (data.dim() - 1)))
    padded = torch.where(mask, padded, torch.zeros((), dtype=data.dtype, device=data.device))
    lengths = (batch_sizes.unsqueeze(1) > torch.arange(batch).unsqueeze(0)).sum(0)
    return padded, lengths


def repack(padded, batch_sizes, rows):
    """Packed data [rows, *] of ``padded`` [T, B, *] (as pack_padded_sequence(...).data);
    rows = batch_sizes.sum(), passed in as a size already known."""
    sizes = batch_sizes.to(padded.device)
    ends = torch.cumsum(sizes, 0)                                    # [T] one past step t
    j = torch.arange(rows, device=padded.device)                     # packed row index
    t = torch.searchsorted(ends, j, right=True)                      # its time step
    b = j - (ends - sizes)[t]                                        # its batch position
    return padded[t, b]
