#!/usr/bin/env bash
# scripts/chroot.sh — cached Debian chroots, for testing against other releases' PyTorch.
#
#   scripts/chroot.sh ensure SUITE [PKG...]
#       Prints the chroot's path ($SHMWARDEN_CHROOT_CACHE, default /var/cache/shmwarden,
#       then /chroot-SUITE). Builds it with `debootstrap --variant=minbase` when it is
#       missing or broken, then installs the PKGs that are not installed
#       (--no-install-recommends). Progress goes to stderr; only the path to stdout.
#   scripts/chroot.sh run SUITE [--bind HOSTPATH:INSIDE]... [--env NAME=VALUE]...
#                               [--cwd DIR] -- CMD [ARG...]
#       Runs CMD inside the chroot, in a private mount and pid namespace: the chroot's
#       root is bind-mounted on itself (a mount point, so that an `unshare
#       --propagation private` inside works), with a fresh /proc, the host's /dev
#       (and /dev/pts) and /sys, a private tmpfs on /dev/shm and on /tmp, and each
#       HOSTPATH (file or directory) bind-mounted at INSIDE. CMD gets an environment of
#       its own, not the host's (whose TMPDIR, PYTHONPATH... name host paths): PATH,
#       HOME=/root, LANG=C.UTF-8, TMPDIR=/tmp, then each --env. Exits with CMD's
#       status. Nothing it mounts, and no process it starts, outlives it.
#
# The mirror is the first non-security `URIs:` of /etc/apt/sources.list.d/debian.sources
# (or the first `deb` line of /etc/apt/sources.list), or $SHMWARDEN_MIRROR when set. A
# mirror that cannot be reached is an error (exit 1) with one sentence saying so: never a
# silent skip. A chroot is complete when its stamp file (.shmwarden-complete, written
# last) exists and a smoke command (dpkg-query and apt-get inside) succeeds; anything
# else is rebuilt from scratch. A lock (flock on chroot-SUITE.lock) keeps two runs from
# building or changing the same chroot at once: `run` and a check that finds nothing to
# do hold it shared, a build or an install holds it alone. Needs root.
set -euo pipefail
prog=chroot.sh
cache=${SHMWARDEN_CHROOT_CACHE:-/var/cache/shmwarden}
stamp=.shmwarden-complete
chroot_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }
usage() { awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$0" >&2; exit 2; }

check_suite() {
	[[ $1 =~ ^[a-z][a-z0-9-]*$ ]] || die "'$1' is not a Debian suite name (like bookworm, trixie, sid)."
}

# The host's Debian mirror: the chroots use the same one the host's apt uses.
mirror() {
	if [ -n "${SHMWARDEN_MIRROR:-}" ]; then echo "$SHMWARDEN_MIRROR"; return; fi
	local f=/etc/apt/sources.list.d/debian.sources uri=
	if [ -r "$f" ]; then
		uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
	fi
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "no Debian mirror found in $f or /etc/apt/sources.list (set SHMWARDEN_MIRROR)."
	echo "${uri%/}"
}

# Fails loudly, in one sentence, when the suite's Release file cannot be fetched.
check_mirror() {
	local m=$1 suite=$2 tmp
	tmp=$(mktemp -d)
	if ! /usr/lib/apt/apt-helper -o Debug::Acquire::http=false download-file \
		"$m/dists/$suite/Release" "$tmp/Release" >"$tmp/log" 2>&1; then
		rm -rf "$tmp"
		die "cannot reach the Debian mirror $m (fetching dists/$suite/Release failed), so the $suite chroot cannot be built or updated."
	fi
	rm -rf "$tmp"
}

# Runs a command in the chroot with /proc mounted, in a throwaway mount namespace (so an
# interrupted run leaves no mount behind).
in_root() {
	local dir=$1; shift
	unshare -m --propagation private -- sh -c '
		dir=$1 path=$2; shift 2
		mount -t proc proc "$dir/proc" && exec chroot "$dir" /usr/bin/env -i PATH="$path" \
			HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' sh "$dir" "$chroot_path" "$@"
}

healthy() {
	local dir=$1
	[ -f "$dir/$stamp" ] && in_root "$dir" sh -c \
		'dpkg-query -W -f="\${Status}\n" dpkg | grep -q "ok installed" && apt-get --version' \
		>/dev/null 2>&1
}

# Unmounts anything left under DIR (a debootstrap killed mid-way leaves proc/sys).
unmount_under() {
	local dir=$1 m
	awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

build() {
	local suite=$1 dir=$2 m=$3 log
	say "building the $suite chroot in $dir from $m (debootstrap --variant=minbase; takes minutes)"
	unmount_under "$dir"
	rm -rf --one-file-system "$dir"
	log="$dir.debootstrap.log"
	# Its own mount namespace: whatever debootstrap mounts goes with it.
	if ! unshare -m --propagation private -- \
		debootstrap --variant=minbase "$suite" "$dir" "$m" >"$log" 2>&1; then
		tail -15 "$log" >&2
		die "debootstrap of $suite from $m failed (log above, whole log in $log)."
	fi
	# sid's (and an old snapshot's) Release may be past its Valid-Until.
	cat >"$dir/etc/apt/apt.conf.d/99shmwarden" <<-'EOF'
	// written by shmwarden's scripts/chroot.sh
	Acquire::Check-Valid-Until "false";
	APT::Install-Recommends "false";
	APT::Install-Suggests "false";
	EOF
	rm -f "$log"
	touch "$dir/$stamp"
	healthy "$dir" || die "the $suite chroot in $dir was built but fails its smoke test (dpkg-query, apt-get inside)."
}

# The PKGs not installed in DIR, one a line (one dpkg-query for all: a chroot entry
# costs a namespace and a mount).
missing_pkgs() {
	local dir=$1; shift
	local installed p
	installed=$(in_root "$dir" dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
		awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }') || true
	for p in "$@"; do
		grep -qxF -- "$p" <<<"$installed" || echo "$p"
	done
}

install_pkgs() {
	local suite=$1 dir=$2 m=$3; shift 3
	local missing log
	missing=$(missing_pkgs "$dir" "$@" | tr '\n' ' ')
	[ -n "${missing// /}" ] || return 0
	check_mirror "$m" "$suite"
	say "installing into the $suite chroot: $missing"
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	log="$dir.apt.log"
	# shellcheck disable=SC2086 # $missing is a list of package names
	if ! in_root "$dir" sh -c 'dpkg --configure -a && apt-get update -q &&
		apt-get install -y -q --no-install-recommends "$@"' sh $missing >"$log" 2>&1; then
		tail -15 "$log" >&2
		die "apt-get install $missing in the $suite chroot failed (log above, whole log in $log)."
	fi
	rm -f "$log"
	missing=$(missing_pkgs "$dir" "$@" | tr '\n' ' ')
	[ -z "${missing// /}" ] || die "after apt-get install, still not installed in the $suite chroot: $missing"
}

# Takes the chroot's lock on fd 9 (-s shared, -x alone), saying so when it must wait.
lock_wait() {
	if ! flock -n "$1" 9; then
		say "waiting for another run using or building $2"
		flock "$1" 9
	fi
}

ensure() {
	local suite=$1; shift
	check_suite "$suite"
	[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)."
	command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/deps.sh test installs it)."
	local dir=$cache/chroot-$suite m
	mkdir -p "$cache"
	exec 9>"$dir.lock"
	lock_wait -s "$dir"
	if healthy "$dir" && [ -z "$(missing_pkgs "$dir" "$@")" ]; then
		exec 9>&-
		echo "$dir"
		return 0
	fi
	# Something to do: take the lock alone (waiting for every run to end), then look
	# again, as another run may have done it meanwhile.
	flock -u 9
	lock_wait -x "$dir"
	if ! healthy "$dir"; then
		m=$(mirror)
		check_mirror "$m" "$suite"
		build "$suite" "$dir" "$m"
	fi
	if [ $# -gt 0 ]; then
		m=$(mirror)
		install_pkgs "$suite" "$dir" "$m" "$@"
	fi
	exec 9>&-
	echo "$dir"
}

run() {
	local suite=$1; shift
	check_suite "$suite"
	[ "$(id -u)" -eq 0 ] || die "needs root (unshare, chroot, mount)."
	local dir=$cache/chroot-$suite
	[ -f "$dir/$stamp" ] || die "no $suite chroot in $dir: run '$0 ensure $suite' first."
	local binds=() cwd=/
	local envs=("PATH=$chroot_path" HOME=/root LANG=C.UTF-8 TMPDIR=/tmp)
	while [ $# -gt 0 ]; do
		case "$1" in
		--bind)
			[ $# -ge 2 ] && [[ $2 == *:/* ]] || die "--bind takes HOSTPATH:/INSIDE, not '${2:-}'."
			[ -e "${2%%:*}" ] || die "--bind: '${2%%:*}' does not exist."
			binds+=("$2"); shift 2 ;;
		--env)
			[ $# -ge 2 ] && [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
				die "--env takes NAME=VALUE, not '${2:-}'."
			envs+=("$2"); shift 2 ;;
		--cwd) [ $# -ge 2 ] || usage; cwd=$2; shift 2 ;;
		--) shift; break ;;
		*) die "unknown option '$1' (run SUITE [--bind HOST:INSIDE]... [--env NAME=VALUE]... [--cwd DIR] -- CMD...)." ;;
		esac
	done
	[ $# -gt 0 ] || die "run: no command after '--'."
	# Held shared for the whole run (by the namespace's pid 1): no rebuild meanwhile.
	exec 9>"$dir.lock"
	lock_wait -s "$dir"
	# --kill-child: if this script is killed, everything in the namespace dies with it.
	exec unshare -m -p -f --kill-child --propagation private -- \
		"$0" _inside "$dir" "$cwd" "${#binds[@]}" "${binds[@]}" "${#envs[@]}" "${envs[@]}" "$@"
}

# Runs as pid 1 of the new pid namespace, in the new mount namespace.
inside() {
	local dir=$1 cwd=$2 n=$3; shift 3
	local i b host in envs=()
	mount --bind "$dir" "$dir"
	mount -t proc -o nosuid,nodev,noexec proc "$dir/proc"
	# The host's /dev with what is mounted in it (/dev/pts: openpty works inside), then
	# a /dev/shm of its own over the host's.
	mount --rbind /dev "$dir/dev"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm"
	mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$dir/tmp"
	mount --bind /sys "$dir/sys"
	for ((i = 0; i < n; i++)); do
		b=$1; shift
		host=${b%%:*} in=${b#*:}
		if [ -d "$host" ]; then
			mkdir -p "$dir$in"
		else
			mkdir -p "$(dirname "$dir$in")"
			[ -e "$dir$in" ] || : >"$dir$in"
		fi
		mount --bind "$host" "$dir$in"
	done
	n=$1; shift
	for ((i = 0; i < n; i++)); do envs+=("$1"); shift; done
	# This shell stays pid 1 (it reaps the orphans of the tree, as an init does) and
	# passes CMD's exit status on.
	chroot "$dir" /usr/bin/env -i "${envs[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' \
		sh "$cwd" "$@" 9>&- &
	wait $!
}

main() {
	[ $# -ge 1 ] || usage
	local cmd=$1; shift
	case "$cmd" in
	ensure) [ $# -ge 1 ] || usage; ensure "$@" ;;
	run) [ $# -ge 1 ] || usage; run "$@" ;;
	_inside) inside "$@" ;;
	mirror) mirror ;;
	-h | --help) usage ;;
	*) die "unknown command '$cmd' (ensure, run)." ;;
	esac
}
# One line, read whole before it runs: a script edited while it runs cannot go astray.
main "$@"; exit
