"""bench_dataloader.py — what a PyTorch user feels: one DataLoader epoch, timed.

A DataLoader with W worker processes over a synthetic in-memory dataset, file_system
sharing strategy: every batch a worker collates is a /dev/shm object registered with that
worker's shm manager (libshm spawns one manager per process that shares), and the main
process maps it. Run once per (manager, W) by scripts/bench, in a fresh interpreter with
a private TMPDIR, so the managers it finds there are this run's and nobody else's.

    /usr/bin/python3 bench_dataloader.py --workers W --manager PATH [--batches N]

--manager points libshm at PATH through libshm_init, the call torch itself makes at import
(what scripts/torch_share.py does; equivalent to bind-mounting PATH over torch's own
torch/bin/torch_shm_manager, without needing root). Prints one JSON line:
first_batch_s   iter(loader) -> first batch in hand (workers forked, managers spawned,
                one batch collated and received)
batches_per_s   the second half of the epoch, per second: steady state, after the
                batches the workers prefetched while the first one was awaited
epoch_s         iter(loader) -> last batch
managers        how many manager processes ran with this TMPDIR
peak_rss_kib    the sum of their VmHWM (peak resident set), read while they still run
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--manager", required=True)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--side", type=int, default=64, help="items are 3 x SIDE x SIDE floats")
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
    half = max(2, a.batches // 2)
    th = t1
    for x, idx in it:
        seen += 1
        bad += int(x[-1, 0, 0, 0].item() != float(int(idx[-1]) % 251))
        if seen == half:
            th = time.monotonic()
        if seen == a.batches:
            break
    t2 = time.monotonic()
    # The managers live while their workers do: read their peaks before shutting down.
    pids = our_managers(tmpdir)
    rss = sum(peak_rss_kib(p) for p in pids)
    del it
    print(json.dumps({"workers": a.workers, "batches": seen, "bad": bad,
                      "first_batch_s": t1 - t0,
                      "batches_per_s": (seen - half) / (t2 - th) if seen > half else 0.0,
                      "epoch_s": t2 - t0,
                      "managers": len(pids), "peak_rss_kib": rss}), flush=True)


if __name__ == "__main__":
    main()
