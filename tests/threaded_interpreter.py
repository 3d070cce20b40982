"""Test-only: every program of an interpreted Triton launch runs in its own thread.

Triton's interpreter runs the programs of a grid one after another, so a program that waits
for another (a barrier, a flag, a step tag) would wait forever, and code that only works
because programs wait for each other cannot be exercised on CPU. Inside
``programs_in_threads()`` each launch instead starts one thread per program, all at once
(every program resident, as the launchers guarantee on a GPU), and returns when all have
finished:

    with programs_in_threads(timeout_s=60) as launches:
        kernel[(n_programs,)](...)
    assert launches == [n_programs]     # programs per threaded launch, in launch order

What it changes in ``triton.runtime.interpreter`` while active (restored on exit; the same
names exist in triton 3.6 and 3.9):
- ``InterpreterBuilder.grid_idx``: per thread, so ``tl.program_id`` answers for the program
  running in that thread;
- ``InterpreterBuilder.set_grid_dim``: the last call before the grid loop; it replaces the
  launch's kernel function by a collector, so the unchanged loop hands every program's
  arguments to a thread instead of running it;
- loads, stores and atomics: each first checks whether the launch is being stopped, then
  runs, then yields the GIL (a waiting program spins on loads, and without the yield every
  spin iteration would hold the GIL for a whole switch interval).

Failures are reported, never hung on: an exception in any program stops the others and is
re-raised in the launching thread; a launch that has not finished after ``timeout_s``, or in
which every running program keeps polling with no program writing anything, raises
``ProgramsHung`` naming where each unfinished program is waiting.

What it can show: that programs which wait for each other compute the right result when
they really run at the same time in any order the OS scheduler picks (``start_stagger_s``
delays program i by i times that, which makes missing waits visible), and that waits do not
deadlock. What it cannot show: each interpreter memory operation is atomic under the GIL and
every thread sees every write at once (sequential consistency), so missing fences, wrong
acquire/release semantics, torn vector stores or L1 staleness pass here; and nothing about
what the compiler hoists, reorders or keeps in registers. Those need a GPU.

Costs nothing unless entered: importing it patches nothing.
"""
import contextlib
import linecache
import os
import sys
import sysconfig
import threading
import time

import numpy as np

_local = threading.local()   # grid_idx, launch: set in program threads; executor: launching thread
_MISSING = object()
_THIS_FILE = os.path.abspath(__file__)
_LIBRARY_DIRS = tuple(os.path.abspath(sysconfig.get_paths()[key])
                      for key in ("stdlib", "purelib", "platlib"))
_LIBRARY_DIRS += (os.path.dirname(os.path.abspath(np.__file__)),)


class ProgramsHung(RuntimeError):
    """Programs of a threaded launch did not finish: a deadlock or a missing wake-up."""


class _Stop(BaseException):
    """Unwinds a program thread when its launch is stopped (BaseException: kernel code and the
    interpreter's own `except Exception` cannot swallow it)."""


def _triton_dir():
    import triton  # wherever this triton is installed (a --target install included)
    return (os.path.dirname(os.path.abspath(triton.__file__)),)


def _kernel_frame(thread):
    """'file:line: source' of the innermost frame of `thread` outside installed libraries
    (triton, numpy, the standard library) and this file: the kernel line it is at."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if (path != _THIS_FILE and not path.startswith(_LIBRARY_DIRS + _triton_dir())
                and not frame.f_code.co_filename.startswith("<")):
            source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
            return f"{os.path.basename(path)}:{frame.f_lineno}: {source}"
        frame = frame.f_back
    return "(not in kernel code)"


class _Launch:
    """One grid launch: collects its programs, runs them in threads, waits for all."""

    def __init__(self, kernel_fn, n_programs, options):
        self.kernel_fn = kernel_fn
        self.n_programs = n_programs
        self.options = options
        self.programs = []          # (grid_idx, thread)
        self.errors = []            # (grid_idx, exception)
        self.finished = 0
        self.stopping = False
        self.writes = 0             # memory writes by any program so far
        self.idle_polls = {}        # program -> polls since the last write it saw
        self.cond = threading.Condition()

    def __call__(self, **args):
        """Called by the interpreter's grid loop in place of the kernel, once per program."""
        index = len(self.programs)
        thread = threading.Thread(target=self._program, args=(_local.grid_idx, index, args),
                                  name=f"triton-program-{_local.grid_idx}", daemon=True)
        self.programs.append((_local.grid_idx, thread))
        if len(self.programs) == self.n_programs:
            self._run_all()

    def _program(self, grid_idx, index, args):
        _local.grid_idx, _local.launch, _local.index = grid_idx, self, index
        _local.seen_writes, _local.polls = -1, 0
        try:
            if self.options["start_stagger_s"]:
                time.sleep(index * self.options["start_stagger_s"])
            self.kernel_fn(**args)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: B036 - every failure goes to the launching thread
            with self.cond:
                self.errors.append((grid_idx, exc))
                self.cond.notify_all()
        finally:
            with self.cond:
                self.finished += 1
                self.idle_polls.pop(index, None)
                self.cond.notify_all()

    def _unfinished(self):
        where = {}
        for grid_idx, thread in self.programs:
            if thread.is_alive():
                where.setdefault(_kernel_frame(thread), []).append(grid_idx[0])
        return "\n".join(f"  programs {ids[:12]}{' ...' if len(ids) > 12 else ''} at {line}"
                         for line, ids in where.items())

    def _run_all(self):
        timeout = self.options["timeout_s"]
        switch = sys.getswitchinterval()
        sys.setswitchinterval(self.options["switch_interval_s"])
        try:
            for _, thread in self.programs:
                thread.start()
            deadline = time.monotonic() + timeout
            with self.cond:
                while (self.finished < self.n_programs and not self.errors
                       and time.monotonic() < deadline):
                    self.cond.wait(0.05)
                done = self.finished == self.n_programs and not self.errors
                errors = list(self.errors)
            if done:
                return
            unfinished = self._unfinished()
            self._stop()
        finally:
            sys.setswitchinterval(switch)
        if errors:
            grid_idx, exc = errors[0]
            if not isinstance(exc, ProgramsHung) and hasattr(exc, "add_note"):
                exc.add_note(f"[programs_in_threads] raised by program {grid_idx}; "
                             f"unfinished then:\n{unfinished}")
            raise exc
        raise ProgramsHung(f"{self.n_programs - self.finished} of {self.n_programs} programs "
                           f"still running after {timeout} s (a wait that is never "
                           f"satisfied?):\n{unfinished}")

    def _stop(self):
        self.stopping = True  # threads raise _Stop at their next memory operation
        for _, thread in self.programs:
            thread.join(timeout=5.0)

    # -- called around every memory operation of a program thread --------------------------

    def before_memory_op(self):
        if self.stopping:
            raise _Stop

    def after_memory_op(self, kind):
        """kind: "write", "poll" (a read that waits for others: volatile or atomic) or
        "read". Detects programs that all poll with nobody writing; yields the GIL."""
        if kind == "write":
            self.writes += 1
        elif kind == "poll" and self.options["idle_polls"]:
            if _local.seen_writes != self.writes:
                _local.seen_writes, _local.polls = self.writes, 0
            _local.polls += 1
            if _local.polls >= self.options["idle_polls"]:
                self._check_all_idle()
        if kind != "read":
            time.sleep(0)

    def _check_all_idle(self):
        with self.cond:
            self.idle_polls[_local.index] = self.writes
            running = self.n_programs - self.finished
            idle = [i for i, w in self.idle_polls.items() if w == self.writes]
            if len(idle) < running or self.stopping or self.errors:
                return
            self.errors.append((_local.grid_idx, ProgramsHung(
                f"all {running} running programs polled {self.options['idle_polls']} times "
                f"each with no program writing memory in between (deadlock):\n"
                f"{self._unfinished()}")))
            self.cond.notify_all()
        raise _Stop


def _memory_op(original, classify):
    """Wrap an InterpreterBuilder memory method; classify(args, result) -> kind."""
    def wrapped(self, *args):
        launch = getattr(_local, "launch", None)
        if launch is None:  # the launching thread, or no threaded launch
            return original(self, *args)
        launch.before_memory_op()
        result = original(self, *args)
        launch.after_memory_op(classify(args, result))
        return result
    return wrapped


def _classifiers(interp):
    rmw = interp._ir.ATOMIC_OP
    reads_if_zero = {rmw.ADD, rmw.FADD, rmw.OR, rmw.XOR}

    def load(args, result):
        return "poll" if args[-1] else "read"  # last argument: is_volatile (atomic_load, polls)

    def store(args, result):
        return "write"

    def atomic_rmw(args, result):
        op, value = args[0], args[2]
        return "poll" if op in reads_if_zero and not np.any(value.data) else "write"

    def atomic_cas(args, result):
        compare, value = args[1], args[2]
        swapped = (result.data == compare.data) & (compare.data != value.data)
        return "write" if np.any(swapped) else "poll"

    return dict(create_masked_load=load, create_masked_store=store,
                create_atomic_rmw=atomic_rmw, create_atomic_cas=atomic_cas)


@contextlib.contextmanager
def programs_in_threads(timeout_s=60.0, idle_polls=2000, start_stagger_s=0.0,
                        switch_interval_s=0.001):
    """Within: every interpreted launch runs each of its programs in its own thread.

    timeout_s: a launch still running after this long raises ProgramsHung.
    idle_polls: raise ProgramsHung as soon as every running program has polled (volatile or
        atomic read) this many times with no program writing in between (0: timeout only).
    start_stagger_s: program i starts i * start_stagger_s late (makes missing waits show).
    switch_interval_s: the interpreter's GIL switch interval while programs run.
    Yields a list that receives the number of programs of each threaded launch.
    Requires TRITON_INTERPRET=1 (set before triton is imported)."""
    import triton.runtime.interpreter as interp
    builder, executor = interp.InterpreterBuilder, interp.GridExecutor
    options = dict(timeout_s=timeout_s, idle_polls=idle_polls, start_stagger_s=start_stagger_s,
                   switch_interval_s=switch_interval_s)
    saved, launches = [], []

    def patch(owner, name, value):
        saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    run_launch = executor.__call__
    set_grid_dim = builder.set_grid_dim

    def launch(self, *args, **kwargs):
        # Remember the executor whose grid loop is about to run (see grid_dim below).
        outer, _local.executor = getattr(_local, "executor", None), self
        kernel_fn = self.fn
        try:
            return run_launch(self, *args, **kwargs)
        finally:
            self.fn, _local.executor = kernel_fn, outer

    def grid_dim(self, nx, ny, nz):
        set_grid_dim(self, nx, ny, nz)
        current = getattr(_local, "executor", None)
        if current is not None and getattr(_local, "launch", None) is None:
            current.fn = _Launch(current.fn, nx * ny * nz, options)
            launches.append(nx * ny * nz)

    patch(builder, "grid_idx", property(lambda self: getattr(_local, "grid_idx", None),
                                        lambda self, value: setattr(_local, "grid_idx", value)))
    patch(executor, "__call__", launch)
    patch(builder, "set_grid_dim", grid_dim)
    for name, classify in _classifiers(interp).items():
        patch(builder, name, _memory_op(getattr(builder, name), classify))
    if hasattr(builder, "create_atomic_poll"):
        # triton 3.9's front end passes an empty ir.value() for "no timeout", which its
        # interpreter then reads as a timeout after the first mismatch: treat it as none.
        poll = builder.create_atomic_poll

        def atomic_poll(self, ptr, expected, timeout_ns, *rest):
            if not isinstance(timeout_ns, interp.TensorHandle):
                timeout_ns = None
            return poll(self, ptr, expected, timeout_ns, *rest)
        patch(builder, "create_atomic_poll", atomic_poll)
    try:
        yield launches
    finally:
        for owner, name, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
