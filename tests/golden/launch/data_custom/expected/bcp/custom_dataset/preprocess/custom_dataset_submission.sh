#!/bin/bash
# bignlp data_preparation job 'custom_dataset', step 'preprocess' for Base Command Platform, rendered from /results/custom_dataset/submissions/1/custom_dataset_hydra.yaml.
# Runs inside the BCP job; node counts follow the config (e.g. trainer.num_nodes=$NGC_ARRAY_SIZE).
set -eo pipefail
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob

# command 1
bcprun --nnodes 2 --npernode 4 --launcher 'mpirun --allow-run-as-root' --env TRANSFORMERS_OFFLINE=1 --env NGC_ARRAY_TYPE=MPIJob --env "BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}" --cmd 'export SLURM_PROCID="${RANK:-${OMPI_COMM_WORLD_RANK:-0}}" SLURM_LOCALID="${LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" SLURM_NTASKS="${WORLD_SIZE:-${OMPI_COMM_WORLD_SIZE:-8}}" SLURM_NNODES=2 SLURM_JOB_NUM_NODES=2 SLURM_NTASKS_PER_NODE=4 SLURM_NODEID="${GROUP_RANK:-${NGC_ARRAY_INDEX:-0}}" SLURM_JOB_ID="${NGC_JOB_ID:-0}"; exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess' 2>&1 | tee -a /results/custom_dataset/preprocess/log-custom_dataset_"${NGC_JOB_ID:-0}".out
