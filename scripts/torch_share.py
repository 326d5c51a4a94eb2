"""torch_share.py — a torch.multiprocessing program run by test_torch.py.

Workers build tensors of known content and send them to the parent through a queue
with the file_system sharing strategy, so every tensor travels as a /dev/shm object
registered with the shm manager (shmwarden, bind-mounted over torch's own). The parent
checks every tensor, checks that the manager it used is shmwarden (its directory and
journal exist under TMPDIR with rows in it), and prints a JSON report on stdout.

    torch_share.py NWORKERS NTENSORS [--hold SECONDS]

With --hold the parent keeps every tensor alive and sleeps after printing its report
(used by the crash tests, which SIGKILL the whole tree at that point).
"""
import glob
import json
import os
import sqlite3
import sys
import time

import torch
import torch.multiprocessing as mp


def worker(q, wid, n):
    for i in range(n):
        t = torch.full((256,), float(wid * 1000 + i), dtype=torch.float32)
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


def main():
    nworkers, ntensors = int(sys.argv[1]), int(sys.argv[2])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--hold" else 0
    mp.set_sharing_strategy("file_system")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(q, w, ntensors)) for w in range(nworkers)]
    for p in procs:
        p.start()
    got, done, bad = [], 0, 0
    while done < nworkers:
        wid, i, t = q.get(timeout=60)
        if i is None:
            done += 1
            continue
        if not torch.equal(t, torch.full((256,), float(wid * 1000 + i))):
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
