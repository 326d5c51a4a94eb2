"""bench_dataloader.py — what a PyTorch user feels: one DataLoader epoch, timed.

A DataLoader with W worker processes over a synthetic in-memory dataset, file_system
sharing strategy: every batch a worker collates is a /dev/shm object registered with that
worker's shm manager (libshm spawns one manager per process that shares), and the main
process maps it. Run once per (manager, W) by scripts/bench, in a fresh interpreter with
a private TMPDIR, so the managers it finds there are this run's and nobody else's.

    /usr/bin/python3 bench_dataloader.py --workers W --manager PATH [--batches N]
                                         [--first-batch-only]

--manager points libshm at PATH through libshm_init, the call torch itself makes at import
(what scripts/torch_share.py does; equivalent to bind-mounting PATH over torch's own
torch/bin/torch_shm_manager, without needing root). Prints one JSON line:
first_batch_s   iter(loader) -> first batch in hand (workers forked, managers spawned,
                one batch collated and received)
With --first-batch-only it stops there and prints only workers, batches (1), bad,
first_batch_s and managers: a run of a few seconds, for more samples of the one figure
that needs them (its value moves from round to round by a third).
batches_per_s   the second half of the epoch, per second: steady state, after the
                batches the workers prefetched while the first one was awaited
epoch_s         iter(loader) -> last batch
managers        how many manager processes ran with this TMPDIR
peak_rss_kib    the sum of their VmHWM (peak resident set), read while they still run
managers_cpu_s  the sum of their CPU time (user + system, all threads, /proc/PID/stat,
                or the live threads' schedstat where that is more: stat counts 10 ms
                ticks), read at the same moment (startup included)
managers_cpu_us_per_batch
                the managers' CPU time over the second half of the epoch, per batch:
                what they take from the workers' and the main process's cores while
                the DataLoader runs steadily
job_cpu_us_per_batch
                the same for the whole job: the main process, its workers and the
                managers
"""
import argparse
import ctypes
import json
import os
import sys
import time
import warnings

import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset


class Synthetic(Dataset):
    """Items made on demand from the index: no file I/O, so the figures are the
    workers', the sharing's and the managers'."""

    def __init__(self, n, shape):
        self.n, self.shape = n, shape

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full(self.shape, float(i % 251)), i


def use_manager(path):
    libshm = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libshm.so"))
    libshm._Z11libshm_initPKc(os.fsencode(os.path.abspath(path)))


def our_managers(tmpdir):  # scripts/bench has the same test, to wait for them
    """Pids of processes whose environment has our private TMPDIR and whose argv[0] is
    torch_shm_manager: only the managers this run's processes spawned."""
    want = b"TMPDIR=" + os.fsencode(tmpdir)
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0]
            if os.path.basename(argv0) != b"torch_shm_manager":
                continue
            with open("/proc/%s/environ" % d, "rb") as f:
                if want not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue  # gone, or not ours to read
        found.append(int(d))
    return found


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    """utime + stime of every thread of pid, in seconds (proc(5): fields 14 and 15, after
    the parenthesised comm, which may itself hold spaces or parentheses)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def oncpu_s(pid):
    """Time on CPU of the threads pid has now, in seconds, to the nanosecond: the first
    field of /proc/PID/task/TID/schedstat (the stat file's utime and stime count 10 ms
    ticks, too coarse for a few hundred microseconds per batch). A thread that ended
    took its time with it: use it only for deltas over a steady stretch."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # the thread ended meanwhile
    return total / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--manager", required=True)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--side", type=int, default=64, help="items are 3 x SIDE x SIDE floats")
    ap.add_argument("--first-batch-only", action="store_true",
                    help="stop after the first batch: time to it, and nothing else")
    a = ap.parse_args()
    tmpdir = os.environ.get("TMPDIR", "")
    if not tmpdir:
        sys.exit("bench_dataloader: TMPDIR must be set to a private directory")
    # More workers than CPUs is the point of the 8-worker run: no advice wanted.
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    use_manager(a.manager)
    mp.set_sharing_strategy("file_system")
    torch.set_num_threads(1)
    ds = Synthetic(a.batches * a.batch_size, (3, a.side, a.side))
    # fork, said outright: Python 3.14 (Debian sid) starts workers with forkserver by
    # default, and such workers import torch afresh, so neither use_manager() nor the
    # sharing strategy set above would reach them (no manager at all).
    loader = DataLoader(ds, batch_size=a.batch_size, num_workers=a.workers,
                        multiprocessing_context="fork")

    t0 = time.monotonic()
    it = iter(loader)
    x, idx = next(it)
    t1 = time.monotonic()
    seen, bad = 1, int(x[0, 0, 0, 0].item() != float(int(idx[0]) % 251))
    if a.first_batch_only:
        # Counted while the workers (and so their managers) still run.
        n = len(our_managers(tmpdir))
        del it
        print(json.dumps({"workers": a.workers, "batches": seen, "bad": bad,
                          "first_batch_s": t1 - t0, "managers": n}), flush=True)
        return
    half = max(2, a.batches // 2)
    th = t1
    # The workers' pids: the DataLoader iterator keeps its worker processes here (1.13
    # to 2.x); only for the CPU figures, which are left out without it.
    workers = [w.pid for w in getattr(it, "_workers", [])]
    mgr_h = job_h = None
    for x, idx in it:
        seen += 1
        bad += int(x[-1, 0, 0, 0].item() != float(int(idx[-1]) % 251))
        if seen == half:
            # Every worker has shared a batch by now: each has its manager.
            mgr_pids = our_managers(tmpdir)
            mgr_h = sum(oncpu_s(p) for p in mgr_pids)
            job_h = mgr_h + sum(oncpu_s(p) for p in workers + [os.getpid()])
            th = time.monotonic()
        if seen == a.batches:
            break
    t2 = time.monotonic()
    # The managers live while their workers do: read their peaks before shutting down.
    pids = our_managers(tmpdir)
    rss = sum(peak_rss_kib(p) for p in pids)
    # Two lower bounds of the managers' CPU time, the larger: stat's ticks count threads
    # that ended (the start-up reclaim's) but only in 10 ms steps, so a short run on a
    # fast machine reads 0; schedstat counts to the nanosecond, but only live threads.
    cpu = sum(max(cpu_s(p), oncpu_s(p)) for p in pids)
    steady = seen - half
    per_batch = {}
    if mgr_h is not None and workers and steady > 0:
        # The same managers as at the half: one that started since would add its whole
        # startup to the steady stretch.
        mgr = sum(oncpu_s(p) for p in mgr_pids)
        job = mgr + sum(oncpu_s(p) for p in workers + [os.getpid()])
        per_batch = {"managers_cpu_us_per_batch": round((mgr - mgr_h) / steady * 1e6, 1),
                     "job_cpu_us_per_batch": round((job - job_h) / steady * 1e6, 1)}
    del it
    print(json.dumps({"workers": a.workers, "batches": seen, "bad": bad,
                      "first_batch_s": t1 - t0,
                      "batches_per_s": (seen - half) / (t2 - th) if seen > half else 0.0,
                      "epoch_s": t2 - t0,
                      "managers": len(pids), "peak_rss_kib": rss,
                      "managers_cpu_s": round(cpu, 3), **per_batch}), flush=True)


if __name__ == "__main__":
    main()
