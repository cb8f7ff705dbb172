#!/bin/bash
# bignlp training job 'gpt3_tiny' for Base Command Platform, rendered from /results/gpt3_tiny/submissions/1/gpt3_tiny_hydra.yaml.
# Runs inside the BCP job; node counts follow the config (e.g. trainer.num_nodes=$NGC_ARRAY_SIZE).
set -eo pipefail
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export NCCL_TOPO_FILE=/opt/microsoft/ndv4-topo.xml
export UCX_IB_PCI_RELAXED_ORDERING=auto
export NCCL_IB_PCI_RELAXED_ORDERING=2
export NCCL_IB_TIMEOUT=22
export NCCL_DEBUG=INFO
export TRANSFORMERS_OFFLINE=1

# command 1
bcprun --nnodes 1 --npernode 1 --env NCCL_TOPO_FILE=/opt/microsoft/ndv4-topo.xml --env UCX_IB_PCI_RELAXED_ORDERING=auto --env NCCL_IB_PCI_RELAXED_ORDERING=2 --env NCCL_IB_TIMEOUT=22 --env NCCL_DEBUG=INFO --env TRANSFORMERS_OFFLINE=1 --env "BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}" --cmd 'export SLURM_PROCID="${RANK:-${OMPI_COMM_WORLD_RANK:-0}}" SLURM_LOCALID="${LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" SLURM_NTASKS="${WORLD_SIZE:-${OMPI_COMM_WORLD_SIZE:-1}}" SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS_PER_NODE=1 SLURM_NODEID="${GROUP_RANK:-${NGC_ARRAY_INDEX:-0}}" SLURM_JOB_ID="${NGC_JOB_ID:-0}"; exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/gpt3_tiny/submissions/1 --config-name gpt3_tiny_hydra.yaml' 2>&1 | tee -a /results/gpt3_tiny/log-gpt3_tiny_"${NGC_JOB_ID:-0}".out
