# /etc/cron.d/shmwarden — reclaim shared memory leaked by dead shm managers, every
# 5 minutes, as root (the sweeper acts with each directory owner's identity).
# Where systemd runs, shmwarden-sweep.timer does this job and this line steps aside;
# elsewhere cron runs it. To stop it, comment the line out (this file is a conffile:
# your change survives upgrades) or `systemctl disable --now shmwarden-sweep.timer`.
# Failures go to syslog. For Prometheus, add
#     --metrics /var/lib/prometheus/node-exporter/shmwarden.prom
# The temp bases are SHMWARDEN_TMPDIRS in /etc/default/shmwarden (/tmp when unset).
*/5 * * * * root [ ! -d /run/systemd/system ] && [ -x /usr/bin/shmwarden ] && { [ -r /etc/default/shmwarden ] && . /etc/default/shmwarden; export SHMWARDEN_TMPDIRS; /usr/bin/shmwarden sweep --syslog >/dev/null 2>&1 || logger -t shmwarden "sweep failed: see 'shmwarden sweep' with /etc/default/shmwarden's SHMWARDEN_TMPDIRS"; }
