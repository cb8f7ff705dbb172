#!/bin/bash
# bignlp data_preparation job 'download_t5_pile', step 'preprocess' for Base Command Platform, rendered from /results/download_t5_pile/submissions/1/download_t5_pile_hydra.yaml.
# Runs inside the BCP job; node counts follow the config (e.g. trainer.num_nodes=$NGC_ARRAY_SIZE).
set -eo pipefail
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob

# command 1
bcprun --nnodes 2 --npernode 2 --launcher 'mpirun --allow-run-as-root' --env TRANSFORMERS_OFFLINE=1 --env NGC_ARRAY_TYPE=MPIJob --env "BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}" --cmd 'export SLURM_PROCID="${RANK:-${OMPI_COMM_WORLD_RANK:-0}}" SLURM_LOCALID="${LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" SLURM_NTASKS="${WORLD_SIZE:-${OMPI_COMM_WORLD_SIZE:-4}}" SLURM_NNODES=2 SLURM_JOB_NUM_NODES=2 SLURM_NTASKS_PER_NODE=2 SLURM_NODEID="${GROUP_RANK:-${NGC_ARRAY_INDEX:-0}}" SLURM_JOB_ID="${NGC_JOB_ID:-0}"; exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_t5_pile/submissions/1 --config-name download_t5_pile_hydra.yaml --step preprocess' 2>&1 | tee -a /results/download_t5_pile/preprocess/log-download_t5_pile_"${NGC_JOB_ID:-0}".out
