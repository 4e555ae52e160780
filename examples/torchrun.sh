#!/bin/bash
# Train an EEAP config on several machines with torchrun: run this same script on every node.
#
#   NNODES=2 NPROC_PER_NODE=4 RDZV_ENDPOINT=node1:29400 RDZV_ID=my-run examples/torchrun.sh CONFIG [key=value ...]
#
# NNODES: how many nodes (trainer.num_nodes); NPROC_PER_NODE: processes on each, one per GPU (trainer.devices);
# RDZV_ENDPOINT: host:port of the rendezvous (any node's address that all can reach; torchrun's c10d store runs
# there); RDZV_ID: the job's name, the same on every node; it names the run folder runs/<config name>/<RDZV_ID>
# (on a shared file system: rank 0 writes, every rank reads). A node that cannot reach the rendezvous gives up
# after torchrun's join timeout; EEAP's ranks wait for each other cluster.timeout seconds (default 1800).
# Prepare the data once before (eeap prepare CONFIG, into the config's data.cache_dir on the shared file system),
# or let the first rank prepare it while the others wait for the cache.
set -euo pipefail

config=${1:?usage: examples/torchrun.sh CONFIG [key=value ...]}
shift
nnodes=${NNODES:-1}
nproc=${NPROC_PER_NODE:-1}

exec torchrun \
    --nnodes "$nnodes" \
    --nproc-per-node "$nproc" \
    --rdzv-backend c10d \
    --rdzv-endpoint "${RDZV_ENDPOINT:-127.0.0.1:29400}" \
    --rdzv-id "${RDZV_ID:-eeap}" \
    --max-restarts "${MAX_RESTARTS:-0}" \
    -m eeap train "$config" \
    trainer.num_nodes="$nnodes" \
    trainer.devices="$nproc" \
    "$@"
