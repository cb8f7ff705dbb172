#!/bin/bash
# bignlp training job 'bignlp-mt5_3b', rendered from /results/mt5_3b/submissions/1/mt5_3b_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=singleton
#SBATCH --error=/results/mt5_3b/log-bignlp-mt5_3b_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-mt5_3b
#SBATCH --mem=0
#SBATCH --nodes=20
#SBATCH --ntasks-per-node=8
#SBATCH --output=/results/mt5_3b/log-bignlp-mt5_3b_%j.out
#SBATCH --time=18-00:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export CUDA_DEVICE_MAX_CONNECTIONS=1

# command 1
srun --kill-on-bad-exit=1 /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/mt5_3b/submissions/1 --config-name mt5_3b_hydra.yaml
