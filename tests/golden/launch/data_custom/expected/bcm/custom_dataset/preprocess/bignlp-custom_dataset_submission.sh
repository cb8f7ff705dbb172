#!/bin/bash
# bignlp data_preparation job 'bignlp-custom_dataset', step 'preprocess', rendered from /results/custom_dataset/submissions/1/custom_dataset_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --array=0-1%2
#SBATCH --cpus-per-task=64
#SBATCH --dependency=afterok:1000001
#SBATCH --error=/results/custom_dataset/preprocess/log-bignlp-custom_dataset_%A_%a.err
#SBATCH --exclusive
#SBATCH --job-name=bignlp-custom_dataset
#SBATCH --kill-on-invalid-dep=yes
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --output=/results/custom_dataset/preprocess/log-bignlp-custom_dataset_%A_%a.out
#SBATCH --time=24:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob

# command 1
srun --kill-on-bad-exit=1 /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
