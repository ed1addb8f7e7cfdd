# shellcheck shell=bash
# Sourced by launch/train and launch/scale, not run: what both need to start the release binary
# under mpirun. Sets `root` (the repository), `binary` (its release gantry) and `as_root` (the
# variables Open MPI wants before it runs as root, empty unless uid is 0); its errors name the
# script that sourced it.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$root/.build/release/gantry
as_root=()
[ "$(id -u)" != 0 ] || as_root=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

# die MESSAGE: one line on stderr, "launch/NAME: MESSAGE", and exit 2 (a bad argument or file).
die() { echo "launch/${0##*/}: $*" >&2; exit 2; }

# The physical cores this process may run on, as mpirun counts slots (hyperthreads of one
# core count once), or nproc when lscpu cannot tell.
cores() {
  local count
  count=$(lscpu -p=CPU,Core,Socket 2>/dev/null | awk -F, -v allowed="$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status 2>/dev/null)" '
    BEGIN { n = split(allowed, ranges, ",")
            for (i = 1; i <= n; i++) { m = split(ranges[i], r, "-"); for (c = r[1]; c <= r[m]; c++) ok[c] = 1 } }
    /^#/ || (n && !ok[$1]) { next }
    !seen[$3 "," ($2 == "" ? "cpu" $1 : $2)]++ { count++ }
    END { print count + 0 }') || true
  if [ "${count:-0}" -gt 0 ]; then echo "$count"; else nproc; fi
}

# mpi_hosts [HOSTFILE]: the hosts mpirun will run on, as "NAME SLOTS" lines in `hosts`, and the
# sum of their slots in `slots`: the hostfile given, else the one in OMPI_MCA_orte_default_hostfile
# if set (as fake-hosts sets it), else a Slurm allocation's (see in_slurm_allocation: one line,
# its node list and its tasks), else this host with its cores. A hostfile's lines are
# "host slots=K"; a line without slots counts 1; '#' starts a comment. `hostfile_used` is the
# file read, empty for a Slurm allocation or this host.
mpi_hosts() {
  hostfile_used=${1:-${OMPI_MCA_orte_default_hostfile:-}}
  if [ -n "$hostfile_used" ]; then
    [ -r "$hostfile_used" ] || die "cannot read hostfile '$hostfile_used'"
    hosts=$(awk '{ sub(/#.*/, "") } NF {
                   k = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { k = substr($i, 7) + 0 }
                   print $1, k }' "$hostfile_used")
  elif in_slurm_allocation; then
    hosts="${SLURM_JOB_NODELIST:-$(uname -n)} $(slurm_tasks)"
  else
    hosts="$(uname -n) $(cores)"
  fi
  slots=$(awk '{ total += $2 } END { print total + 0 }' <<< "$hosts")
  ((slots > 0)) || die "no hosts in hostfile '$hostfile_used'"
}

# in_slurm_allocation: whether this runs inside a Slurm job (sbatch, salloc: SLURM_JOB_ID and
# SLURM_TASKS_PER_NODE set). mpirun then takes the allocation's hosts from Slurm by itself, a
# slot per task.
in_slurm_allocation() { [ -n "${SLURM_JOB_ID:-}" ] && [ -n "${SLURM_TASKS_PER_NODE:-}" ]; }

# slurm_tasks: the allocation's tasks: SLURM_NTASKS, else (sbatch without -n) the sum of
# SLURM_TASKS_PER_NODE ("16(x2),8" is 40).
slurm_tasks() {
  [ -z "${SLURM_NTASKS:-}" ] || { echo "$SLURM_NTASKS"; return; }
  awk -v RS=, -F'[(x)]' 'NF { total += $1 * ($3 == "" ? 1 : $3) } END { print total + 0 }' <<< "$SLURM_TASKS_PER_NODE"
}

# one_rank_per_host: whether mpi_hosts read a hostfile whose hosts each have one slot. Such a
# rank is not bound to a core: its threads are meant to use its host's cores, and hosts that
# share a machine (fake-hosts' namespaces, containers) would otherwise all bind their rank to
# the same core 0 (two fake hosts trained the MLP at 5,300 images/s bound, 80,700 unbound).
one_rank_per_host() {
  [ -n "$hostfile_used" ] && awk '$2 != 1 { more = 1 } END { exit more }' <<< "$hosts"
}

# show_command COMMAND...: the command line as launch/train prints it before running it, with
# the root variables in front when there are any.
show_command() {
  echo "${as_root[*]}${as_root[*]:+ }$(printf '%q ' "$@" | sed 's/ $//')"
}

# build_if_stale: builds the release binary (launch/setup, then swift build -c release) when it
# is missing or older than Package.swift or a file in Sources/.
build_if_stale() {
  if [ ! -x "$binary" ] || [ -n "$(find "$root/Sources" "$root/Package.swift" -newer "$binary" -print -quit)" ]; then
    "$root/launch/setup"
    echo "launch/${0##*/}: building $binary" >&2
    (cd "$root" && swift build -c release --product gantry >&2)
    touch "$binary"   # swift build leaves it alone when a source change does not change the code
  fi
}

# --- Several hosts: launch/train --net and --restarts ---

# valid_cidr NET: whether NET is an IPv4 network written A.B.C.D/BITS (each number 0-255, BITS 0-32).
valid_cidr() {
  [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] || return 1
  local i
  for i in 1 2 3 4; do ((10#${BASH_REMATCH[i]} <= 255)) || return 1; done
  ((10#${BASH_REMATCH[5]} <= 32))
}

# ipv4_number A.B.C.D: the address as one 32-bit number.
ipv4_number() {
  local IFS=. a b c d
  read -r a b c d <<< "$1"
  echo $(((10#$a << 24) + (10#$b << 16) + (10#$c << 8) + 10#$d))
}

# in_network ADDRESS NET: whether the IPv4 ADDRESS lies in NET (A.B.C.D/BITS).
in_network() {
  local bits=${2#*/} mask
  mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
  (( ($(ipv4_number "$1") & mask) == ($(ipv4_number "${2%/*}") & mask) ))
}

# local_addresses: this host's IPv4 addresses, one a line (empty if `ip` is missing).
local_addresses() {
  command -v ip > /dev/null || return 0
  ip -o -4 addr show 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'
}

# is_this_host NAME: whether a hostfile's NAME is the host this script runs on (its name, short
# name, localhost, or one of its addresses). mpirun starts this host's ranks itself, without the
# launch agent, so such a host is never probed.
is_this_host() {
  case "$1" in
    localhost|127.*|"$(uname -n)"|"$(uname -n | cut -d. -f1)") return 0 ;;
  esac
  local_addresses | grep -qxF -- "$1"
}

# launch_agent: sets the array `agent` to the command mpirun reaches other hosts with: Open MPI's
# plm_rsh_agent (ompi_info reads it from OMPI_MCA_plm_rsh_agent, as fake-hosts sets it, and the
# MCA parameter files; default "ssh : rsh", of which the first), ssh without a password prompt.
launch_agent() {
  local setting
  setting=$(ompi_info --param plm rsh --level 9 --parsable 2>/dev/null |
    awk -F: '$5 == "plm_rsh_agent" && $6 == "value" { print substr($0, length($1 $2 $3 $4 $5 $6) + 7); exit }') || true
  setting=${setting#\"}; setting=${setting%\"}   # ompi_info quotes it
  setting=${setting:-${OMPI_MCA_plm_rsh_agent:-ssh}}
  read -ra agent <<< "${setting%%:*}"
  [ "${agent[0]##*/}" != ssh ] || agent+=(-o BatchMode=yes -o ConnectTimeout=10)
}

# probe_hosts: asks each host of `hosts` (mpi_hosts) to run `true` through the launch agent, all
# at once, each within 20 s. Sets `alive` ("NAME SLOTS" lines of the hosts that answered, in
# their order; this host always answers) and `dropped` (the names of the others, comma-separated).
probe_hosts() {
  local answers name k pids=()
  answers=$(mktemp -d "${TMPDIR:-/tmp}/gantry-probe.XXXXXX")
  launch_agent
  while read -r name k; do
    if is_this_host "$name"; then
      touch "$answers/$name"
    else
      (timeout 20 "${agent[@]}" "$name" true < /dev/null > /dev/null 2>&1 && touch "$answers/$name") &
      pids+=($!)
    fi
  done <<< "$hosts"
  ((${#pids[@]} == 0)) || wait "${pids[@]}" 2>/dev/null || true
  alive=$(while read -r name k; do [ ! -e "$answers/$name" ] || echo "$name $k"; done <<< "$hosts")
  dropped=$(while read -r name k; do [ -e "$answers/$name" ] || echo "$name"; done <<< "$hosts" | paste -sd, - | sed 's/,/, /g')
  rm -rf "$answers"
}

# run_folder GANTRY_TRAIN_OPTIONS...: sets `out` to the run's folder as gantry train chooses it:
# --out, else runs/PRESET, else runs/MODEL, else runs/mlp.
run_folder() {
  local preset= model= previous=
  out=
  for arg in "$@"; do
    case $previous in
      --out) out=$arg ;;
      --preset) preset=$arg ;;
      --model) model=$arg ;;
    esac
    case $arg in
      --out=*) out=${arg#*=} ;;
      --preset=*) preset=${arg#*=} ;;
      --model=*) model=${arg#*=} ;;
    esac
    previous=$arg
  done
  out=${out:-runs/${preset:-${model:-mlp}}}
}

# newest_checkpoint DIR: the path of the newest checkpoint in DIR/checkpoints (the highest
# step), or nothing.
newest_checkpoint() {
  compgen -G "$1/checkpoints/step-*.safetensors" | sort | tail -1 || true
}

# checkpoint_split FILE: "RANKS BATCH", the ranks and the batch per rank that wrote the checkpoint
# (its safetensors header: 8 bytes of length, then JSON; read with jq).
checkpoint_split() {
  local length
  length=$(od -An -tu8 -N8 "$1" | tr -d ' ') && [ -n "$length" ] || return 1
  head -c "$((8 + length))" "$1" | tail -c +9 |
    jq -er '.__metadata__ | "\(.["gantry.ranks"] // "1") \(.["gantry.configuration"] | fromjson | .batchSize)"'
}
