"""Counts kernel launches, so tests and the traffic report can see what ran."""
from collections import Counter

counts = Counter()


def record(name, n=1):
    counts[name] += n


def reset():
    counts.clear()


def total():
    return sum(counts.values())
