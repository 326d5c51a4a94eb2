#!/usr/bin/python3
"""torch_share.py — real PyTorch sharing tensors through the shm manager.

Workers build tensors of known content and send them to the parent through a queue
with the file_system sharing strategy, so every tensor travels as a /dev/shm object
registered with the shm manager. The parent checks every tensor, checks that the
manager it used is shmwarden (its directory and journal exist under TMPDIR with rows
in it), and prints a JSON report on stdout. Used by tests/proc/test_torch.py and by
the demo.

    /usr/bin/python3 torch_share.py NWORKERS NTENSORS [--hold SECONDS] [--manager PATH]
                                    [--start fork|spawn|forkserver] [--dataloader]
                                    [--get-delay SECONDS]

--hold: the parent keeps every tensor alive and sleeps after its report (the crash
tests and the demo SIGKILL the whole tree then). --manager: point libshm at PATH
(through libshm_init, the call torch itself makes at import) instead of torch's own
torch/bin/torch_shm_manager; without it, the caller has bind-mounted shmwarden there.
--start: the multiprocessing start method of the workers (default fork). --dataloader:
the workers are a torch.utils.data.DataLoader's (NWORKERS workers, NTENSORS items
each, batches of 2), instead of Process objects writing to a Queue. --get-delay: the
parent starts taking tensors from the queue only this long after starting the workers,
as a training loop slower than its workers does; each tensor is registered again, by
the parent, that long after its object was made.

When the tensors cannot be shared (the manager refuses to start: an unusable TMPDIR, a
missing manager), it says so in one sentence on stderr and exits 1, within seconds of
the workers' failure and within STALL_S (180 s) of the last tensor at worst; never a
silent wait.
"""
import argparse
import ctypes
import glob
import json
import os
import queue
import sqlite3
import sys
import time

# The longest the parent waits for the next tensor. Generous: a spawn or forkserver
# worker imports torch first, seconds of CPU that a loaded machine stretches to a minute.
STALL_S = 180
# Once a worker has exited, whatever it sent is already in the queue's pipe: this long
# without an item means its tensors will not come.
DRAIN_S = 2


def parser():
    """The command line; argparse only, so --help needs no torch."""
    ap = argparse.ArgumentParser(
        prog="torch_share.py",
        description="Real PyTorch sharing tensors through the shm manager: workers send "
                    "tensors of known content to this process with the file_system sharing "
                    "strategy (each one a /dev/shm object registered with the manager); it "
                    "checks every tensor and prints a JSON report on stdout: pid, workers' "
                    "pids, received, bad, manager_dirs and journal_rows under TMPDIR, torch "
                    "version (then, without --dataloader, a second line: join_after_exit).",
        epilog="When the tensors cannot be shared (an unusable TMPDIR, a missing manager), "
               "it says so in one sentence on stderr and exits 1, within %d s of the last "
               "tensor at worst." % STALL_S)
    ap.add_argument("nworkers", type=int, metavar="NWORKERS", help="worker processes")
    ap.add_argument("ntensors", type=int, metavar="NTENSORS",
                    help="tensors each worker sends (with --dataloader: items per worker)")
    ap.add_argument("--hold", type=float, default=0, metavar="SECONDS",
                    help="after the report, keep every tensor alive and sleep this long (the "
                         "crash tests and the demo SIGKILL the whole tree then; default 0)")
    ap.add_argument("--manager", metavar="PATH",
                    help="point libshm at this manager (through libshm_init, as torch does at "
                         "import) instead of torch's own torch/bin/torch_shm_manager")
    ap.add_argument("--numel", type=int, default=256, metavar="N",
                    help="float32 elements per tensor (default 256)")
    ap.add_argument("--start", choices=("fork", "spawn", "forkserver"), default="fork",
                    help="the workers' multiprocessing start method (default fork)")
    ap.add_argument("--dataloader", action="store_true",
                    help="the workers are a torch.utils.data.DataLoader's (NWORKERS workers, "
                         "NTENSORS items each, batches of 2) instead of Process objects "
                         "writing to a Queue")
    ap.add_argument("--get-delay", type=float, default=0, metavar="SECONDS",
                    help="start taking tensors from the queue only this long after starting "
                         "the workers, as a training loop slower than its workers does: each "
                         "tensor is registered again, by this process, that long after its "
                         "object was made (default 0)")
    return ap


# Before torch: importing it takes seconds, and --help and a bad command line need none of it.
if __name__ == "__main__":
    ARGS = parser().parse_args()

import torch
import torch.multiprocessing as mp

# At import, not in main(): spawn and forkserver workers import this module afresh and
# would otherwise share through file descriptors, never calling the manager.
mp.set_sharing_strategy("file_system")

def fail(why):
    """Ends the run with one sentence (exit 1)."""
    sys.exit("torch_share.py: %s (is the temp base %s usable, and the manager runnable? its own "
             "error, if it printed one, is above)" % (why, tmpbase()))


def worker(q, received, wid, n, numel):
    # The file_system strategy needs the sender to keep each tensor until the receiver
    # has rebuilt it: the last reference gone, libshm unlinks the object, and the
    # receiver's rebuild fails with ENOENT. So the worker holds them until told.
    sent = []
    for i in range(n):
        t = torch.full((numel,), float(wid * 1000 + i), dtype=torch.float32)
        # Shared here, not in the queue's feeder thread (which would only print the
        # error and drop the tensor): a manager that refuses to start is then an error
        # this worker reports, in libshm's words.
        try:
            t.share_memory_()
        except RuntimeError as e:
            q.put((wid, "error", str(e).strip().splitlines()[-1]))
            return
        q.put((wid, i, t))
        sent.append(t)
    q.put((wid, None, None))
    received.wait(600)


class Items(torch.utils.data.Dataset):
    """Item i is a tensor full of float(i), and the pid of the worker that made it."""

    def __init__(self, n, numel):
        self.n, self.numel = n, numel

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((self.numel,), float(i)), os.getpid()


def load(ctx, nworkers, n, numel):
    """Receives every item of a DataLoader's workers; returns (tensors kept, bad, pids)."""
    dl = torch.utils.data.DataLoader(Items(n, numel), batch_size=2, num_workers=nworkers,
                                     multiprocessing_context=ctx)
    got, bad, pids, seen = [], 0, set(), 0
    for batch, wpids in dl:
        for t in batch:
            if not torch.equal(t, torch.full((numel,), float(seen))):
                bad += 1
            seen += 1
        pids.update(wpids.tolist())
        got.append(batch)
    return got, bad, sorted(pids)


def gone(pid):
    """True once pid has exited (a zombie not yet reaped by join counts)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Reaped between the open and the read: the read fails with ESRCH.
        return True


def tmpbase():
    """The temp base the manager makes its directory in: shmwarden's choice (util_tmpbase:
    the first non-empty of TMPDIR, TMP, TEMP, TEMPDIR, else /tmp), not tempfile's (another
    order, and a writability probe)."""
    for var in ("TMPDIR", "TMP", "TEMP", "TEMPDIR"):
        if os.environ.get(var):
            return os.environ[var]
    return "/tmp"


def journal_rows():
    rows = 0
    dirs = glob.glob(os.path.join(tmpbase(), "shmwarden-*"))
    for d in dirs:
        db = os.path.join(d, "journal.db")
        if os.path.exists(db):
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            rows += con.execute("select count(*) from objects").fetchone()[0]
            con.close()
    return dirs, rows


# --manager, for the workers: libshm_init must run in every process that shares, and
# spawn and forkserver workers are fresh interpreters that only import this module.
MANAGER_ENV = "TORCH_SHARE_MANAGER"


def use_manager(path):
    libshm = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libshm.so"))
    libshm._Z11libshm_initPKc(os.fsencode(os.path.abspath(path)))
    os.environ[MANAGER_ENV] = os.path.abspath(path)


def main(args):
    nworkers, ntensors, hold = args.nworkers, args.ntensors, args.hold
    if args.manager:
        use_manager(args.manager)
    ctx = mp.get_context(args.start)
    if args.dataloader:
        try:
            got, bad, wpids = load(ctx, nworkers, nworkers * ntensors, args.numel)
        except RuntimeError as e:
            # A worker's error arrives as "Caught RuntimeError in DataLoader worker
            # process 0." and its traceback: the original message is the last line.
            lines = [l for l in str(e).splitlines() if l.strip()]
            fail("the DataLoader's tensors could not be shared: %s" % (
                lines[-1].strip() if lines else type(e).__name__))
        dirs, rows = journal_rows()
        print(json.dumps({"pid": os.getpid(), "workers": wpids, "received": sum(len(b) for b in got),
                          "bad": bad, "manager_dirs": [os.path.basename(d) for d in dirs],
                          "journal_rows": rows, "torch": torch.__version__}), flush=True)
        if hold:
            time.sleep(hold)
        return
    q, received = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=worker, args=(q, received, w, ntensors, args.numel))
             for w in range(nworkers)]
    for p in procs:
        p.start()
    time.sleep(args.get_delay)
    got, done, bad = [], set(), 0
    last = time.monotonic()
    try:
        while len(done) < nworkers:
            try:
                wid, i, t = q.get(timeout=0.5)
            except queue.Empty:
                now = time.monotonic()
                # A worker that died before its last item (it could not share a tensor:
                # libshm's error kills it, or its queue's feeder thread drops the item).
                dead = [w for w, p in enumerate(procs) if w not in done and p.exitcode is not None]
                if dead and now - last >= DRAIN_S:
                    w = dead[0]
                    fail("worker %d (pid %d) exited with status %s having sent %d of its %d "
                         "tensors: they could not be shared through the shm manager" % (
                             w, procs[w].pid, procs[w].exitcode,
                             sum(1 for x in got if x[0] == w), ntensors))
                if now - last >= STALL_S:
                    fail("no tensor from the workers for %d s (%d of %d received)" % (
                        STALL_S, len(got), nworkers * ntensors))
                continue
            last = time.monotonic()
            if i == "error":
                fail("worker %d: its tensors could not be shared through the shm manager: %s" % (
                    wid, t))
            if i is None:
                done.add(wid)
                continue
            if not torch.equal(t, torch.full((args.numel,), float(wid * 1000 + i))):
                bad += 1
            got.append((wid, t))
    except SystemExit:
        for p in procs:
            if p.exitcode is None:
                p.terminate()
            p.join(10)
        raise
    got = [t for _, t in got]
    received.set()
    dirs, rows = journal_rows()
    report = {
        "pid": os.getpid(),
        "workers": [p.pid for p in procs],
        "received": len(got),
        "bad": bad,
        "manager_dirs": [os.path.basename(d) for d in dirs],
        "journal_rows": rows,
        "torch": torch.__version__,
    }
    print(json.dumps(report), flush=True)
    if hold:
        time.sleep(hold)
    # How long join() takes once every worker has exited: the time something else (a
    # manager the worker spawned) holds the pipe join() watches. The second report line.
    dead = time.monotonic()
    while not all(gone(p.pid) for p in procs) and time.monotonic() - dead < 60:
        time.sleep(0.05)
    dead = time.monotonic()
    for p in procs:
        p.join(30)
    print(json.dumps({"join_after_exit": round(time.monotonic() - dead, 3)}), flush=True)
    del got


if os.environ.get(MANAGER_ENV) and __name__ != "__main__":
    use_manager(os.environ[MANAGER_ENV])  # a spawn or forkserver worker's import

if __name__ == "__main__":
    main(ARGS)
