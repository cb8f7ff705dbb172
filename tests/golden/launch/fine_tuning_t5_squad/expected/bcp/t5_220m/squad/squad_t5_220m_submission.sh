#!/bin/bash
# bignlp fine_tuning job 'squad_t5_220m' for Base Command Platform, rendered from /results/t5_220m/squad/submissions/1/squad_t5_220m_hydra.yaml.
# Runs inside the BCP job; node counts follow the config (e.g. trainer.num_nodes=$NGC_ARRAY_SIZE).
set -eo pipefail
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
bcprun --nnodes 1 --npernode 1 --env TRANSFORMERS_OFFLINE=1 --env "BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}" --cmd 'export SLURM_PROCID="${RANK:-${OMPI_COMM_WORLD_RANK:-0}}" SLURM_LOCALID="${LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" SLURM_NTASKS="${WORLD_SIZE:-${OMPI_COMM_WORLD_SIZE:-1}}" SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS_PER_NODE=1 SLURM_NODEID="${GROUP_RANK:-${NGC_ARRAY_INDEX:-0}}" SLURM_JOB_ID="${NGC_JOB_ID:-0}"; exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --step prepare_squad --squad-dir /opt/bignlp/data/squad_data' 2>&1 | tee -a /results/t5_220m/squad/log-squad_t5_220m_"${NGC_JOB_ID:-0}".out

# command 2
bcprun --nnodes 1 --npernode 8 --env TRANSFORMERS_OFFLINE=1 --env "BIGNLP_STORE_SECRET=${BIGNLP_STORE_SECRET}" --cmd 'export SLURM_PROCID="${RANK:-${OMPI_COMM_WORLD_RANK:-0}}" SLURM_LOCALID="${LOCAL_RANK:-${OMPI_COMM_WORLD_LOCAL_RANK:-0}}" SLURM_NTASKS="${WORLD_SIZE:-${OMPI_COMM_WORLD_SIZE:-8}}" SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS_PER_NODE=8 SLURM_NODEID="${GROUP_RANK:-${NGC_ARRAY_INDEX:-0}}" SLURM_JOB_ID="${NGC_JOB_ID:-0}"; exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning' 2>&1 | tee -a /results/t5_220m/squad/log-squad_t5_220m_"${NGC_JOB_ID:-0}".out
