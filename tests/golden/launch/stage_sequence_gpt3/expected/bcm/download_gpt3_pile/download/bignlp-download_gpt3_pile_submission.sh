#!/bin/bash
# bignlp data_preparation job 'bignlp-download_gpt3_pile', step 'download', rendered from /results/download_gpt3_pile/submissions/1/download_gpt3_pile_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --array=0-1%30
#SBATCH --dependency=singleton
#SBATCH --error=/results/download_gpt3_pile/download/log-bignlp-download_gpt3_pile_%A_%a.err
#SBATCH --exclusive
#SBATCH --job-name=bignlp-download_gpt3_pile
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/download_gpt3_pile/download/log-bignlp-download_gpt3_pile_%A_%a.out
#SBATCH --time=4:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export NCCL_DEBUG=INFO
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob
WANDB_API_KEY="$(head -n 1 -- '/home/user/.wandb key')"  # read at run time, never stored here
export WANDB_API_KEY

# command 1
srun /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
