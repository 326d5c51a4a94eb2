#!/usr/bin/env bash
# scripts/deps.sh TARGET — installs the Debian packages TARGET needs, only if missing.
#   build  compiler, make, SQLite, libcap-ng and libseccomp headers
#   test   build + Debian's python3, python3-pytest and python3-pytest-timeout (the suite
#          runs under pytest), python3-torch (real PyTorch tests), util-linux
#          (unshare, mount), passwd (useradd for the multi-user tests), valgrind, strace
#          (its delay injection holds a sweep at an exact syscall in the race tests),
#          systemd (systemd-analyze rates the unit), Slurm and munge (the epilog test),
#          debootstrap (scripts/chroot.sh: the trixie and sid chroots of the PyTorch matrix,
#          the bookworm one the Debian packages are installed into), and deb's tools,
#          clang-format (make test checks the C style against .clang-format)
#   demo   build + python3-torch (the demo's clients are real PyTorch)
#   bench  build + python3-torch (Debian's torch_shm_manager is the baseline, and real
#          PyTorch DataLoaders), strace and valgrind (scripts/bench --profile)
#   fuzz   build + clang and its libFuzzer runtime
#   deb    build + the Debian packaging tools (make deb: debhelper, dpkg-dev, lintian, and
#          build-essential, which dpkg-buildpackage checks for as an implicit build
#          dependency), pkgconf and systemd.pc (debian/rules asks it for the unit directory)
# Runs `apt-get update` once before installing (package lists on a fresh machine may be
# stale) and fails with a clear message when it cannot install.
set -euo pipefail
target=${1:-build}
pkgs=(gcc make libc6-dev libsqlite3-dev libcap-ng-dev libseccomp-dev)
# systemd.pc (where make deb installs the units) is in systemd-dev from systemd 253-2 on
# (trixie), in systemd itself before (bookworm, where a systemd-dev of backports would
# not install beside the release's systemd).
systemd_pc() {
	local v
	v=$(apt-cache policy systemd 2>/dev/null | awk '$1 == "Candidate:" { print $2 }')
	if [ -n "$v" ] && [ "$v" != "(none)" ] && dpkg --compare-versions "$v" ge 253-2~; then
		echo systemd-dev
	else
		echo systemd
	fi
}
case "$target" in
build) ;;
test) pkgs+=(python3 python3-pytest python3-pytest-timeout python3-torch util-linux mount passwd
	valgrind strace procps debootstrap clang-format
	systemd slurmctld slurmd slurm-client munge debhelper dpkg-dev build-essential lintian
	pkgconf "$(systemd_pc)") ;;
demo) pkgs+=(python3 python3-torch procps) ;;
bench) pkgs+=(python3 python3-torch procps strace valgrind) ;;
fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
deb) pkgs+=(debhelper dpkg-dev build-essential lintian pkgconf "$(systemd_pc)") ;;
*) echo "deps.sh: unknown target '$target' (build, test, demo, bench, fuzz, deb)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root or install them: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "deps.sh: no apt-get here; install by hand: ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || { echo "deps.sh: apt-get update failed (network or mirror?)" >&2; exit 1; }
# Others may be installing at the same time: wait for dpkg's lock instead of failing.
if ! apt-get -o DPkg::Lock::Timeout=900 install -y -q "${missing[@]}" >/tmp/shmwarden-deps.log 2>&1; then
	tail -20 /tmp/shmwarden-deps.log >&2
	echo "deps.sh: apt-get install ${missing[*]} failed (log above)" >&2
	exit 1
fi
echo "deps.sh: installed ${missing[*]}" >&2
