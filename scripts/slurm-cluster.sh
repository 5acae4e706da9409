#!/usr/bin/env bash
# A real single-node Slurm cluster for the Slurm executor tests (facts: shared/reference/slurm-local-cluster.md).
#
#   scripts/slurm-cluster.sh start    munged + slurmctld + slurmd, waits until the node is idle
#   scripts/slurm-cluster.sh stop     kills each daemon by the pid in its pid file, waits for exit
#   scripts/slurm-cluster.sh status   exit 0 when the node answers `sinfo` as idle/mixed/allocated
#
# Needs root and the Debian packages `slurm-wlm munge` (apt-get install --no-install-recommends).
# The config is written to $MECHEVAL_SLURM_DIR/slurm.conf (default /tmp/mecheval-slurm) and every
# client finds it through SLURM_CONF: `export SLURM_CONF=/tmp/mecheval-slurm/slurm.conf`.
# Daemons are never stopped by name: only the pids this script started (recorded in pid files).
set -euo pipefail

DIR="${MECHEVAL_SLURM_DIR:-/tmp/mecheval-slurm}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID="$DIR/slurmctld.pid"
SLURMD_PID="$DIR/slurmd.pid"

die() { echo "slurm-cluster: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -o %t 2>/dev/null | head -n1 | tr -d '*'; }

write_conf() {
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 512 ))
  mkdir -p "$DIR/spool/slurmctld" "$DIR/spool/slurmd" "$DIR/log"
  cat >"$CONF" <<EOF
# written by mecheval scripts/slurm-cluster.sh
ClusterName=ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
MinJobAge=4
KillWait=2
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.log
ReturnToService=2
StateSaveLocation=$DIR/spool/slurmctld
SlurmdSpoolDir=$DIR/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as their submitting user)"
  for b in munged slurmctld slurmd sinfo sbatch; do command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || die "$b not found: apt-get install -y --no-install-recommends slurm-wlm munge"; done
  if ! alive "$MUNGE_PID"; then
    [ -f /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key; }
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 40); do alive "$MUNGE_PID" && break; sleep 0.25; done
  fi
  munge -n | unmunge >/dev/null || die "munge does not work"
  local how="already running"
  if ! alive "$CTLD_PID"; then write_conf; /usr/sbin/slurmctld -c -f "$CONF"; how="started"; fi
  if ! alive "$SLURMD_PID"; then /usr/sbin/slurmd -f "$CONF"; how="started"; fi
  for _ in $(seq 240); do
    case "$(node_state)" in idle|mix|alloc) echo "slurm-cluster: node up, $how (SLURM_CONF=$CONF)"; return 0 ;; esac
    sleep 0.25
  done
  die "node not idle after 60 s; see $DIR/log/"
}

stop_pid() {
  local f="$1"
  [ -f "$f" ] || return 0
  local pid
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  stop_pid "$SLURMD_PID"
  stop_pid "$CTLD_PID"
  stop_pid "$MUNGE_PID"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) case "$(node_state)" in idle|mix|alloc) exit 0 ;; *) exit 1 ;; esac ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
