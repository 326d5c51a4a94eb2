"""torch_share.py — real PyTorch sharing tensors through the shm manager.

Workers build tensors of known content and send them to the parent through a queue
with the file_system sharing strategy, so every tensor travels as a /dev/shm object
registered with the shm manager. The parent checks every tensor, checks that the
manager it used is shmwarden (its directory and journal exist under TMPDIR with rows
in it), and prints a JSON report on stdout. Used by tests/proc/test_torch.py and by
the demo.

    /usr/bin/python3 torch_share.py NWORKERS NTENSORS [--hold SECONDS] [--manager PATH]

--hold: the parent keeps every tensor alive and sleeps after its report (the crash
tests and the demo SIGKILL the whole tree then). --manager: point libshm at PATH
(through libshm_init, the call torch itself makes at import) instead of torch's own
torch/bin/torch_shm_manager; without it, the caller has bind-mounted shmwarden there.
"""
import argparse
import ctypes
import glob
import json
import os
import sqlite3
import time

import torch
import torch.multiprocessing as mp


def worker(q, wid, n, numel):
    for i in range(n):
        t = torch.full((numel,), float(wid * 1000 + i), dtype=torch.float32)
        q.put((wid, i, t))
    q.put((wid, None, None))


def journal_rows():
    rows = 0
    dirs = glob.glob(os.path.join(os.environ["TMPDIR"], "shmwarden-*"))
    for d in dirs:
        db = os.path.join(d, "journal.db")
        if os.path.exists(db):
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            rows += con.execute("select count(*) from objects").fetchone()[0]
            con.close()
    return dirs, rows


def use_manager(path):
    libshm = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libshm.so"))
    libshm._Z11libshm_initPKc(os.fsencode(os.path.abspath(path)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nworkers", type=int)
    ap.add_argument("ntensors", type=int)
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--manager")
    ap.add_argument("--numel", type=int, default=256, help="float32 elements per tensor")
    args = ap.parse_args()
    nworkers, ntensors, hold = args.nworkers, args.ntensors, args.hold
    if args.manager:
        use_manager(args.manager)
    mp.set_sharing_strategy("file_system")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(q, w, ntensors, args.numel)) for w in range(nworkers)]
    for p in procs:
        p.start()
    got, done, bad = [], 0, 0
    while done < nworkers:
        wid, i, t = q.get(timeout=60)
        if i is None:
            done += 1
            continue
        if not torch.equal(t, torch.full((args.numel,), float(wid * 1000 + i))):
            bad += 1
        got.append(t)
    dirs, rows = journal_rows()
    report = {
        "pid": os.getpid(),
        "workers": [p.pid for p in procs],
        "received": len(got),
        "bad": bad,
        "manager_dirs": [os.path.basename(d) for d in dirs],
        "journal_rows": rows,
    }
    print(json.dumps(report), flush=True)
    if hold:
        time.sleep(hold)
    for p in procs:
        p.join(30)
    del got


if __name__ == "__main__":
    main()
