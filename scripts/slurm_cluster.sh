#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine, to run the `slurm` launcher preset for real.
#
#   eval "$(scripts/slurm_cluster.sh start)"  # install Debian's slurm + munge if missing, start, set SLURM_CONF
#   eval "$(scripts/slurm_cluster.sh env)"    # SLURM_CONF again, in another shell
#   scripts/slurm_cluster.sh stop             # stop what `start` started, remove its state dir
#
# sbatch, squeue and the submitit launcher find the cluster through SLURM_CONF.
#
# Everything lives in a fresh temp dir that `start` prints: config, munge key and socket, state,
# spool, logs and pid files. A munged (as user munge), slurmctld and slurmd run from it on free
# ports, so a system SLURM or munge, if any, is left alone, and `stop` signals only the processes
# whose pid files are in that dir and whose command lines name it. Needs root (the daemons, apt-get).
set -euo pipefail

CURRENT="${MNIST_EXP_SLURM_POINTER:-/tmp/mnist-exp-slurm.current}"  # where `start` notes its dir
PACKAGES=(slurmctld slurmd slurm-client munge)

die() { echo "slurm_cluster: $*" >&2; exit 1; }

install_if_missing() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "SLURM is not installed; as root: apt-get install -y ${PACKAGES[*]}"
    echo "Installing ${PACKAGES[*]} from Debian's packages" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A pid from DIR's pid file, only if that process is alive and its command line names DIR.
our_pid() {
    local dir=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir" && echo "$pid"
}

running_dir() {
    local dir
    [ -s "$CURRENT" ] || return 1
    dir=$(cat "$CURRENT")
    our_pid "$dir" "$dir/slurmctld.pid" >/dev/null && echo "$dir"
}

write_config() {
    local dir=$1 node mem cpus
    node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/')
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
    cat >"$dir/slurm.conf" <<EOF
ClusterName=mnistexp
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
EnforcePartLimits=ALL
$node
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    local dir=$1
    mkdir -p "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chown -R munge:munge "$dir/munge"
    chmod 755 "$dir/munge"  # munged wants its socket dir open to all, its key private
    chmod 400 "$dir/munge/munge.key"
    runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
}

wait_for_idle_node() {
    local dir=$1
    for _ in $(seq 60); do
        [ "$(SLURM_CONF=$dir/slurm.conf sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && return
        sleep 0.5
    done
    die "the node did not come up within 30 s; logs in $dir/log and $dir/munge"
}

on_failed_start() {
    [ "$1" = 0 ] && return
    local dir log
    dir=$(cat "$CURRENT")
    echo "slurm_cluster: start failed; the ends of its logs:" >&2
    for log in "$dir"/log/*.log "$dir"/munge/munged.log; do
        [ -f "$log" ] && { echo "== $log" >&2; tail -n 20 "$log" >&2; }
    done
    cmd_stop
}

cmd_start() {
    local dir
    if dir=$(running_dir); then
        echo "SLURM cluster already running, state in $dir" >&2
        echo "export SLURM_CONF=$dir/slurm.conf"
        return
    fi
    [ "$(id -u)" = 0 ] || die "start needs root (it runs munged, slurmctld and slurmd)"
    install_if_missing
    dir=$(mktemp -d /tmp/mnist-exp-slurm.XXXXXX)
    echo "$dir" >"$CURRENT"
    trap 'on_failed_start $?' EXIT
    chmod 755 "$dir"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    write_config "$dir"
    start_munge "$dir"
    # -f puts $dir in the daemons' command lines, which is how `stop` knows them as ours.
    slurmctld -f "$dir/slurm.conf"
    slurmd -f "$dir/slurm.conf" -N localhost
    wait_for_idle_node "$dir"
    trap - EXIT
    echo "SLURM cluster up: node localhost, partition debug, state in $dir" >&2
    echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_env() {
    local dir
    dir=$(running_dir) || die "no cluster running (start one with: $0 start)"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

cmd_stop() {
    local dir pid pidfile
    [ -s "$CURRENT" ] || { echo "no cluster to stop" >&2; return; }
    dir=$(cat "$CURRENT")
    if our_pid "$dir" "$dir/slurmctld.pid" >/dev/null; then
        SLURM_CONF="$dir/slurm.conf" scancel --partition=debug 2>/dev/null || true  # its jobs only
    fi
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if pid=$(our_pid "$dir" "$pidfile"); then
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
    done
    rm -f "$CURRENT"
    case "$dir" in /tmp/mnist-exp-slurm.*) rm -rf "$dir" ;; esac
    echo "SLURM cluster stopped, $dir removed" >&2
}

case "${1:-}" in
    start) cmd_start ;;
    env) cmd_env ;;
    stop) cmd_stop ;;
    *) die "usage: $0 start|env|stop" ;;
esac
