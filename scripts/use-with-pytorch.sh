#!/usr/bin/env bash
# scripts/use-with-pytorch.sh — make PyTorch run shmwarden as its torch_shm_manager, and undo it.
#
# Usage: use-with-pytorch.sh [OPTIONS] install|uninstall|status
#
#   use-with-pytorch.sh [OPTIONS] install     replace torch/bin/torch_shm_manager with a
#                                             link to shmwarden (the original is kept as
#                                             torch_shm_manager.pytorch)
#   use-with-pytorch.sh [OPTIONS] uninstall   put PyTorch's own manager back
#   use-with-pytorch.sh [OPTIONS] status      say which manager PyTorch will run
#
# Options:
#   --torch-dir DIR   the torch package directory (holding bin/torch_shm_manager);
#                     default: where that Python finds `torch`
#   --python PY       the Python whose torch to change (default: $PYTHON, else the first
#                     of /usr/bin/python3 and the python3s on PATH that has torch)
#   --manager PATH    shmwarden's torch_shm_manager (default: the installed one)
#   --bind            install: bind-mount shmwarden over the file instead of replacing it
#                     (changes nothing on disk; lost at reboot; uninstall unmounts)
#
# PyTorch runs <torch>/bin/torch_shm_manager and has no setting to point it elsewhere, so
# this is the only way in. Every change is one rename (or one mount), so a PyTorch
# process starting meanwhile runs one manager or the other, never a missing file.
# Exit status: install and uninstall: 0 done (or nothing to do), 1 failed, 2 usage.
# status: 0 PyTorch runs shmwarden, 1 PyTorch runs its own manager, 2 usage, 3 cannot
# tell (something else is linked or mounted there, or no torch or manager is found).
set -euo pipefail

default_manager=/usr/local/bin/torch_shm_manager # make install rewrites this line

# The help is the header: from the Usage line to the exit statuses, minus the rationale.
usage() {
	awk 'NR > 2 && !/^#/ { exit } /^# Usage:/ { on = 1 } /^# PyTorch runs/ { skip = 1 }
		/^# Exit status/ { skip = 0 } on && !skip { sub(/^# ?/, ""); print }' "$0"
}
# A failure is exit 1; for status, whose 1 means "PyTorch's own manager", it is 3.
fail_status=1
die() { echo "use-with-pytorch: $*" >&2; exit "$fail_status"; }
bad_usage() {
	echo "use-with-pytorch: $*" >&2
	echo "Try 'use-with-pytorch.sh --help' for more information." >&2
	exit 2
}

torch_dir= python=${PYTHON:-} manager= bind=0 cmd=
while [ $# -gt 0 ]; do
	case "$1" in
	--torch-dir) [ $# -ge 2 ] && [ -n "$2" ] || bad_usage "--torch-dir needs a directory"
		torch_dir=$2; shift 2 ;;
	--torch-dir=?*) torch_dir=${1#*=}; shift ;;
	--python) [ $# -ge 2 ] && [ -n "$2" ] || bad_usage "--python needs a program"
		python=$2; shift 2 ;;
	--python=?*) python=${1#*=}; shift ;;
	--manager) [ $# -ge 2 ] && [ -n "$2" ] || bad_usage "--manager needs a path"
		manager=$2; shift 2 ;;
	--manager=?*) manager=${1#*=}; shift ;;
	--bind) bind=1; shift ;;
	-h|--help) usage; exit 0 ;;
	install|uninstall|status)
		[ -z "$cmd" ] || bad_usage "one command only"
		cmd=$1; shift ;;
	*) bad_usage "unknown argument '$(printf '%q' "$1")'" ;;
	esac
done
[ -n "$cmd" ] || bad_usage "missing command (install, uninstall or status)"
[ "$cmd" != status ] || fail_status=3

# The torch package directory of a Python, or nothing when it has no torch. find_spec,
# not import: importing torch takes seconds and loads libtorch. A spec without an origin
# is a namespace package (a stray directory named torch), not torch.
torch_of() {
	"$1" -c 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.dirname(s.origin) if s and s.origin else "")' 2>/dev/null
}
if [ -z "$torch_dir" ] && [ -n "$python" ]; then
	command -v -- "$python" >/dev/null || die "cannot run $python (use --python or --torch-dir)"
	torch_dir=$(torch_of "$python") || die "cannot run $python to find torch (use --python or --torch-dir)"
	[ -n "$torch_dir" ] || die "$python cannot import torch (use --python for the Python that has it, or --torch-dir)"
elif [ -z "$torch_dir" ]; then
	# The first python3 on PATH is often not the one with torch (a pyenv or venv shim
	# ahead of Debian's, which python3-torch installs into): ask each, Debian's first.
	tried=
	for py in /usr/bin/python3 $(type -ap python3 2>/dev/null); do
		[ -x "$py" ] || continue
		real_py=$(readlink -f -- "$py" 2>/dev/null) || real_py=$py
		case " $tried " in *" $real_py "*) continue ;; esac
		tried="$tried $real_py"
		torch_dir=$(torch_of "$py") || torch_dir=
		[ -n "$torch_dir" ] && { python=$py; break; }
	done
	[ -n "$torch_dir" ] || die "no python3 here can import torch (tried:${tried:- none found}); give --python PY for the Python that has it, or --torch-dir DIR"
fi
target=$torch_dir/bin/torch_shm_manager
backup=$target.pytorch
[ -e "$target" ] || [ -L "$target" ] || die "$target does not exist: is $torch_dir a torch package?"

manager=${manager:-$default_manager}
# The binary behind the link: run as `shmwarden`, never as torch_shm_manager (that name
# would start a manager).
real=$(readlink -f -- "$manager" 2>/dev/null) || real=
is_shmwarden() { [ -n "$real" ] && [ -x "$real" ] && "$real" --version 2>/dev/null | grep -q '^shmwarden '; }

mounted() { mountpoint -q -- "$target" 2>/dev/null; }
# True when the file PyTorch runs is that binary (by link target, bind mount or inode).
# Both must exist: two failed stats compare equal, and a dangling link is not ours.
runs_ours() {
	local t r
	[ -n "$real" ] && t=$(stat -L -c %d:%i -- "$target" 2>/dev/null) &&
		r=$(stat -L -c %d:%i -- "$real" 2>/dev/null) && [ "$t" = "$r" ]
}

case "$cmd" in
status)
	if mounted; then
		if runs_ours; then
			echo "shmwarden: $target is bind-mounted over by $real ($("$real" --version))"
		else
			echo "unknown: $target has something bind-mounted over it (not $manager)"
			exit 3
		fi
	elif runs_ours; then
		echo "shmwarden: $target -> $(readlink -- "$target") ($("$real" --version)); PyTorch's own is kept as $backup"
	elif [ -L "$target" ]; then
		echo "unknown: $target is a link to $(readlink -- "$target") (not $manager)"
		exit 3
	else
		echo "pytorch: $target is PyTorch's own torch_shm_manager"
		exit 1
	fi
	;;
install)
	is_shmwarden || die "$manager is not shmwarden's torch_shm_manager (use --manager; make install puts it in $default_manager)"
	if runs_ours; then
		echo "already installed: PyTorch runs $real"
		exit 0
	fi
	if [ "$bind" = 1 ]; then
		mounted && die "something is already mounted over $target: uninstall it first"
		mount --bind -- "$real" "$target" || die "mount --bind failed (root needed)"
		echo "installed: $real is bind-mounted over $target (until reboot or uninstall)"
		exit 0
	fi
	[ -L "$target" ] && die "$target is already a link (to $(readlink -- "$target")): not replacing what is not PyTorch's file"
	# A backup beside a regular file: PyTorch was reinstalled or upgraded over our link;
	# the file there now is its current manager, the one to keep.
	[ -e "$backup" ] && echo "replacing the old $backup with PyTorch's current manager"
	# A hard link keeps the original (mode, owner and all) under the backup name; the
	# rename then swaps the link in atomically.
	ln -f -- "$target" "$backup" || die "cannot keep $target as $backup"
	tmp=$target.shmwarden-new.$$
	# The link holds the absolute path (one relative to here would be read relative to
	# torch/bin, and lead nowhere), its last component unresolved: the binary tells the
	# drop-in by its name, torch_shm_manager, which a resolved link would lose.
	abs=$(realpath -s -- "$manager") || die "cannot make $manager an absolute path"
	if ! ln -sfn -- "$abs" "$tmp" || ! mv -Tf -- "$tmp" "$target"; then
		rm -f -- "$tmp" "$backup"
		die "cannot replace $target"
	fi
	echo "installed: $target -> $abs (PyTorch's own kept as $backup)"
	;;
uninstall)
	done_something=0
	while mounted; do
		umount -- "$target" || die "cannot unmount $target"
		echo "unmounted $target"
		done_something=1
	done
	if [ -e "$backup" ]; then
		[ -L "$target" ] || [ ! -e "$target" ] || runs_ours ||
			die "$target is not a link to shmwarden any more; not overwriting it with $backup"
		mv -Tf -- "$backup" "$target" || die "cannot restore $backup"
		echo "restored PyTorch's own $target"
		done_something=1
	elif [ -L "$target" ]; then
		die "$target is a link (to $(readlink -- "$target")) and $backup is missing: reinstall PyTorch to get its manager back"
	fi
	[ "$done_something" = 1 ] || echo "not installed: PyTorch runs its own torch_shm_manager"
	;;
esac
