#!/usr/bin/env bash
# Run a command with CPU priority over everything else on the machine, and report its wall time
# and the CPU time of it and every process it starts (Ray daemons included).
#
#   sudo scripts/cpu_priority.sh NAME COMMAND...      e.g. scripts/cpu_priority.sh suite make test
#
# Why: timings taken while benchmark runs share the cores say more about the load than about the
# code. A cgroup (v1 cpu + cpuacct) with cpu.shares 20480 gets nearly all of the CPU it asks for
# while other processes keep running slowly; measured on 2 cores, tests/cluster took 124 s with it
# beside five benchmark runs and 118 s with nothing else running (docs/testing.md).
# The cgroup gets no real-time budget, so a test that needs SCHED_FIFO skips inside it. The command
# runs as the user who runs this script (root, to write the cgroup), and the group is kept after
# it ends: use a fresh NAME per measurement (processes left in a reused group count again).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 NAME COMMAND... (NAME: a cgroup name, e.g. suite)" >&2
    exit 2
fi
name=$1
shift
if [[ ! $name =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "error: NAME '$name': use letters, digits, '_' or '-' (it names a cgroup folder)" >&2
    exit 2
fi
root=/sys/fs/cgroup
if [[ ! -w $root/cpu || ! -w $root/cpuacct ]]; then
    echo "error: $root/cpu and $root/cpuacct (cgroup v1) are not writable here; run as root on a cgroup-v1 machine" >&2
    exit 1
fi
for c in cpu cpuacct; do mkdir -p "$root/$c/$name"; done
echo 20480 >"$root/cpu/$name/cpu.shares"
echo 0 >"$root/cpuacct/$name/cpuacct.usage"
start=$(date +%s.%N)
rc=0
# the command joins the group before it starts (or does not start at all: exit 125)
bash -c 'echo $$ >"$1/cpu/$2/tasks" && echo $$ >"$1/cpuacct/$2/tasks" || exit 125; shift 2; exec "$@"' \
    _ "$root" "$name" "$@" || rc=$?
end=$(date +%s.%N)
usage=$(cat "$root/cpuacct/$name/cpuacct.usage")
awk -v n="$name" -v rc="$rc" -v s="$start" -v e="$end" -v u="$usage" \
    'BEGIN { printf "cpu_priority %s: exit %d, wall %.1f s, cpu %.1f s\n", n, rc, e - s, u / 1e9 }'
exit $rc
