"""test_slurm.py — the Slurm epilog (scripts/slurm-epilog) on a real single-node cluster,
and the `sweep --user` it relies on.

The cluster is Debian's slurmctld, slurmd and munged, started by this test with its own
slurm.conf, state and spool directories, munge key and socket in a private directory,
listening on loopback ports picked free, and stopped (by pid) at the end whatever
happens. Jobs run as a throwaway user; the tree under test is `make install`ed into a
private prefix, so the epilog is the installed script calling the installed binary.

Processes are tracked with proctrack/cgroup (cgroup v1 freezer), as on real clusters:
cancelling a job SIGKILLs every process of it, the PyTorch managers included, which is
what leaks their objects (with proctrack/linuxproc a manager escapes the kill and shuts
down by itself 2 s later, and there is nothing left to test). The cgroup directories
Slurm makes are named after this test's node and removed at the end.
"""
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sandbox  # noqa: E402

PY = "/usr/bin/python3"
SHARE = os.path.join(harness.ROOT, "scripts", "torch_share.py")
FREEZER = "/sys/fs/cgroup/freezer"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def skip(name, why):
    print("SKIP %s: %s" % (name, why))


@contextlib.contextmanager
def throwaway_user(tag):
    name = "shmwsl-%s-%s" % (tag, secrets.token_hex(3))
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        kill_user_processes(pwd.getpwnam(name).pw_uid)
        r = subprocess.run(["userdel", name], capture_output=True, text=True)
        if r.returncode != 0:
            print("# userdel %s failed: %s" % (name, r.stderr.strip()))


def kill_user_processes(uid):
    """SIGKILLs what runs as uid (a user this test made: nothing else runs as it)."""
    for _ in range(50):
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and owner(p) == uid]
        if not pids:
            return
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.1)


def owner(pid):
    try:
        return os.stat("/proc/%s" % pid).st_uid
    except FileNotFoundError:
        return None


def user_objects(uid):
    out = []
    for n in os.listdir(harness.SHM):
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(os.path.join(harness.SHM, n)).st_uid == uid:
                out.append(n)
    return sorted(out)


def user_dirs(base, uid):
    return sorted(d for d in glob.glob(os.path.join(base, "shmwarden-*"))
                  if os.path.isdir(d) and os.lstat(d).st_uid == uid)


# ---- sweep --user ----------------------------------------------------------------------


def dead_manager_as(sb, pw, names):
    """pw's manager and client register NAMES (each created by the client), then both
    are SIGKILLed: harness.dead_manager_as, with HOME=/ (a system user has none)."""
    return harness.dead_manager_as(sb, pw, ["+" + n for n in names], dict(sb.env, HOME="/"))


def sweep(sb, *args, pw=None):
    kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[]) if pw else {}
    return subprocess.run([harness.SHMWARDEN, "sweep", "--tmpdir", sb.tmp] + list(args),
                          capture_output=True, text=True, timeout=120, env=sb.env,
                          stdin=subprocess.DEVNULL, **kw)


def test_sweep_user_reclaims_one_users_directories():
    if os.geteuid() != 0:
        skip("test_sweep_user_reclaims_one_users_directories", "needs root")
        return
    sb = Sandbox("swuser", shared=True)
    try:
        with throwaway_user("a") as a, throwaway_user("b") as b:
            da = dead_manager_as(sb, a, [sb.name(1), sb.name(2)])
            db = dead_manager_as(sb, b, [sb.name(3)])
            da2 = dead_manager_as(sb, a, [sb.name(4)])
            # Garbage is a usage error that touches nothing.
            for bad in ("", "nosuch-%s" % secrets.token_hex(4), "99999999999999999999",
                        "12ab", "-1", "a\nb"):
                r = sweep(sb, "--user", bad)
                expect(r.returncode == 2 and "--user" in r.stderr and r.stdout == "",
                       "--user %r: %d %r" % (bad, r.returncode, r.stderr[:200]))
            r = sweep(sb, "--user")
            expect(r.returncode == 2, "--user without a value: %d" % r.returncode)
            expect(os.path.isdir(da) and os.path.isdir(db) and len(sb.objects()) == 4,
                   "a refused sweep changed something")
            # A user may name only themselves.
            r = sweep(sb, "--user", b.pw_name, pw=a)
            expect(r.returncode == 2 and "only root" in r.stderr, "a for b: %r" % r.stderr)
            # By name: a's two directories, not b's.
            r = sweep(sb, "--json", "--user", a.pw_name)
            doc = json.loads(r.stdout)
            expect(r.returncode == 0 and doc["totals"]["removed"] == 2 and
                   doc["totals"]["dirs"] == 2, "--user a: %s %s" % (r.stdout, r.stderr))
            expect(not os.path.exists(da) and not os.path.exists(da2) and os.path.isdir(db),
                   "directories after --user a")
            expect(sb.objects() == [sb.name(3)], "objects: %s" % sb.objects())
            # By uid, and the uid of a user that no longer has a name works the same.
            r = sweep(sb, "--json", "--user=%d" % b.pw_uid)
            expect(r.returncode == 0 and json.loads(r.stdout)["totals"]["removed"] == 1,
                   "--user=uid: %s %s" % (r.stdout, r.stderr))
            expect(sb.objects() == [] and sb.manager_dirs() == [], "left: %s" % sb.objects())
            # A user naming themselves sweeps as before.
            dead_manager_as(sb, b, [sb.name(5)])
            r = sweep(sb, "--user", str(b.pw_uid), pw=b)
            expect(r.returncode == 0 and sb.objects() == [], "b for b: %r" % r.stderr)
    finally:
        sb.cleanup()


# ---- the epilog on a real cluster ------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged, slurmctld and slurmd of our own, in directory d."""

    def __init__(self, d, node):
        self.d, self.node, self.procs = d, node, []
        self.conf = os.path.join(d, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.env.pop("SLURM_JOB_ID", None)

    def path(self, *p):
        return os.path.join(self.d, *p)

    def start(self, epilog):
        for sub in ("munge", "key", "state", "spool", "log"):
            os.makedirs(self.path(sub), mode=0o755)
        os.chmod(self.path("key"), 0o700)
        with open(self.path("key", "munge.key"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.path("key", "munge.key"), 0o600)
        sock = self.path("munge", "munge.sock")
        self.spawn(["munged", "-F", "--key-file=" + self.path("key", "munge.key"),
                    "--socket=" + sock, "--pid-file=" + self.path("munge", "munged.pid"),
                    "--log-file=" + self.path("log", "munged.log"),
                    "--seed-file=" + self.path("key", "seed")], "munged")
        expect(harness.wait_for(lambda: os.path.exists(sock), 15), "munged: no socket")
        host = socket.gethostname()
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "ClusterName=shmwt",
                "SlurmctldHost=%s(127.0.0.1)" % host,
                "SlurmctldPort=%d" % free_port(),
                "SlurmdPort=%d" % free_port(),
                "AuthType=auth/munge",
                "AuthInfo=socket=%s" % sock,
                "CredType=cred/munge",
                "SlurmUser=root", "SlurmdUser=root",
                "StateSaveLocation=" + self.path("state"),
                "SlurmdSpoolDir=" + self.path("spool"),
                "SlurmctldPidFile=" + self.path("slurmctld.pid"),
                "SlurmdPidFile=" + self.path("slurmd.pid"),
                "SlurmctldLogFile=" + self.path("log", "slurmctld.log"),
                "SlurmdLogFile=" + self.path("log", "slurmd.log"),
                "SlurmdDebug=debug",
                "ProctrackType=proctrack/cgroup",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "MpiDefault=none",
                "SchedulerType=sched/builtin",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "KillWait=5",
                "ReturnToService=2",
                "Epilog=" + epilog,
                "PlugStackConfig=" + self.path("plugstack.conf"),
                "NodeName=%s NodeAddr=127.0.0.1 NodeHostname=%s CPUs=2 State=UNKNOWN"
                % (self.node, host),
                "PartitionName=shmwt Nodes=%s Default=YES MaxTime=INFINITE State=UP "
                "OverSubscribe=YES" % self.node, ""]))
        with open(self.path("cgroup.conf"), "w") as f:
            f.write("CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
                    "CgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n")
        open(self.path("plugstack.conf"), "w").close()
        self.spawn(["slurmctld", "-D", "-f", self.conf], "slurmctld")
        self.spawn(["slurmd", "-D", "-N", self.node, "-f", self.conf], "slurmd")
        ok = harness.wait_for(lambda: "idle" in self.run(["sinfo", "-h", "-o", "%T"]).stdout,
                              60, 0.5)
        expect(ok, "the node never became idle: %s" % self.logs())

    def spawn(self, argv, name):
        out = open(self.path("log", name + ".out"), "w")
        self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self.env))
        out.close()

    def run(self, argv, timeout=60):
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=self.env, stdin=subprocess.DEVNULL)

    def logs(self):
        out = []
        for f in sorted(glob.glob(self.path("log", "*"))):
            with open(f, errors="replace") as fh:
                out.append("--- %s\n%s" % (os.path.basename(f), fh.read()[-1500:]))
        return "\n".join(out)

    def submit(self, pw, script, out):
        r = self.run(["sbatch", "--parsable", "--uid=%d" % pw.pw_uid, "--gid=%d" % pw.pw_gid,
                      "--export=TMPDIR=/tmp,PATH=/usr/bin:/bin", "-D", os.path.dirname(out),
                      "-o", out, "--wrap", script])
        expect(r.returncode == 0, "sbatch: %s %s" % (r.stdout, r.stderr))
        return int(r.stdout.strip().split(";")[0])

    def state(self, job):
        return self.run(["squeue", "-h", "-j", str(job), "-o", "%T"]).stdout.strip()

    def epilog_done(self, job):
        with open(self.path("log", "slurmd.log"), errors="replace") as f:
            return "completed epilog for jobid %d\n" % job in f.read()

    def stop(self):
        if not self.procs or all(p.poll() is not None for p in self.procs):
            return  # never started, or stopped already
        with contextlib.suppress(Exception):
            self.run(["scancel", "--partition=shmwt"], timeout=30)
            harness.wait_for(lambda: self.run(["squeue", "-h"]).stdout.strip() == "", 60, 0.5)
        for p in reversed(self.procs):  # slurmd, slurmctld, then munged
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)


def remove_cgroups(node):
    """The v1 cgroup directories slurmd made for this node (slurm_NODE), deepest first."""
    for top in glob.glob("/sys/fs/cgroup/*/slurm_%s" % node):
        for root, dirs, _ in sorted(os.walk(top, topdown=False), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(root)


def install_prefix(prefix):
    r = subprocess.run(["make", "-s", "-C", harness.ROOT, "-o", "all", "-o", "lib", "install",
                        "BUILD=" + harness.BUILD, "PREFIX=" + prefix],
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, MAKEFLAGS="", MFLAGS="", MAKELEVEL=""))
    expect(r.returncode == 0, "make install: %s%s" % (r.stdout, r.stderr))


JOB = ("exec /usr/bin/python3 %(share)s 2 5 --hold 600 --manager "
       "%(prefix)s/bin/torch_shm_manager")


def wait_report(path, job, cluster, timeout=180):
    def ready():
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            line = f.readline()
            if line.endswith("\n"):
                return json.loads(line)
        st = cluster.state(job)
        expect(st in ("PENDING", "RUNNING", "CONFIGURING"),
               "job %d is %r before reporting: %s" % (job, st, open(path).read()
                                                     if os.path.exists(path) else ""))
        return None
    rep = harness.wait_for(ready, timeout, 0.5)
    expect(rep, "job %d printed no report in %ds" % (job, timeout))
    expect(rep["bad"] == 0 and rep["received"] == 10, "job %d: %s" % (job, rep))
    return rep


def test_epilog_reclaims_a_killed_job_and_spares_the_users_other_job():
    name = "test_epilog_reclaims_a_killed_job_and_spares_the_users_other_job"
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch", "scancel", "squeue")
               if not shutil.which(c)]
    if os.geteuid() != 0 or missing:
        skip(name, "needs root and %s" % (missing or "Slurm"))
        return
    if not os.path.exists(os.path.join(FREEZER, "tasks")):
        skip(name, "no cgroup v1 freezer at %s for proctrack/cgroup" % FREEZER)
        return
    node = "shmwt%s" % secrets.token_hex(3)
    d = tempfile.mkdtemp(prefix="shmw-slurm-", dir="/tmp")
    os.chmod(d, 0o755)
    cluster = Cluster(d, node)
    try:
        with throwaway_user("job") as pw:
            try:
                prefix = os.path.join(d, "prefix")
                install_prefix(prefix)
                epilog = os.path.join(prefix, "share", "shmwarden", "slurm-epilog")
                with open(epilog) as f:
                    expect("shmwarden=%s/bin/shmwarden " % prefix in f.read(),
                           "the installed epilog does not call the installed binary")
                share = os.path.join(d, "torch_share.py")
                shutil.copy(SHARE, share)
                jobs = os.path.join(d, "jobs")
                os.makedirs(jobs)
                os.chmod(jobs, 0o1777)
                cluster.start(epilog)
                t0 = time.monotonic()
                script = JOB % {"share": share, "prefix": prefix}

                a = cluster.submit(pw, script, os.path.join(jobs, "a.out"))
                rep_a = wait_report(os.path.join(jobs, "a.out"), a, cluster)
                dirs_a = user_dirs("/tmp", pw.pw_uid)
                objs_a = user_objects(pw.pw_uid)
                expect(dirs_a and len(objs_a) == 10, "job a: dirs %s objects %s" % (dirs_a, objs_a))

                b = cluster.submit(pw, script, os.path.join(jobs, "b.out"))
                wait_report(os.path.join(jobs, "b.out"), b, cluster)
                dirs_b = sorted(set(user_dirs("/tmp", pw.pw_uid)) - set(dirs_a))
                objs_b = sorted(set(user_objects(pw.pw_uid)) - set(objs_a))
                expect(dirs_b and len(objs_b) == 10, "job b: dirs %s objects %s" % (dirs_b, objs_b))

                r = cluster.run(["scancel", "--signal=KILL", str(a)])
                expect(r.returncode == 0, "scancel: %s" % r.stderr)
                done = harness.wait_for(lambda: cluster.epilog_done(a) and not cluster.state(a),
                                        120, 0.5)
                expect(done, "job a's epilog never completed: %s" % cluster.logs())
                # Job a's managers were SIGKILLed with it (they wait 2 s after their last
                # client before reclaiming anything themselves): whatever is gone now, the
                # epilog reclaimed.
                left = sorted(set(user_objects(pw.pw_uid)) & set(objs_a))
                expect(left == [], "job a left %d objects: %s" % (len(left), left[:5]))
                expect(not any(os.path.exists(x) for x in dirs_a), "job a left %s" % dirs_a)
                # Job b, same user, still running: everything of it is there.
                expect(cluster.state(b) == "RUNNING", "job b: %r" % cluster.state(b))
                expect(set(objs_b) <= set(user_objects(pw.pw_uid)), "job b lost objects")
                expect(all(os.path.isdir(x) for x in dirs_b), "job b lost its managers' dirs")
                print("# cluster up to job a reclaimed: %.1f s; job a report %s" %
                      (time.monotonic() - t0, rep_a["pid"]))

                # And b's turn: the epilog reclaims it too once it is killed.
                cluster.run(["scancel", "--signal=KILL", str(b)])
                done = harness.wait_for(lambda: cluster.epilog_done(b) and not cluster.state(b),
                                        120, 0.5)
                expect(done, "job b's epilog never completed")
                expect(user_objects(pw.pw_uid) == [] and user_dirs("/tmp", pw.pw_uid) == [],
                       "job b left %s %s" % (user_objects(pw.pw_uid), user_dirs("/tmp", pw.pw_uid)))
                cluster.stop()
            finally:
                # Whatever a failure left, while the user still exists (its uid is
                # then ours alone): its processes, directories and objects.
                cluster.stop()
                kill_user_processes(pw.pw_uid)
                subprocess.run([harness.SHMWARDEN, "sweep", "--user", str(pw.pw_uid),
                                "--tmpdir", "/tmp"], capture_output=True, timeout=120)
                for n in user_objects(pw.pw_uid):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(harness.SHM, n))
    finally:
        cluster.stop()
        remove_cgroups(node)
        shutil.rmtree(d, ignore_errors=True)


harness.main(globals())
