#!/bin/bash
# bignlp data_preparation job 'bignlp-download_gpt3_pile', step 'extract', rendered from /results/download_gpt3_pile/submissions/1/download_gpt3_pile_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --array=0,3,5-7%30
#SBATCH --dependency=aftercorr:1000001
#SBATCH --error=/results/download_gpt3_pile/extract/log-bignlp-download_gpt3_pile_%A_%a.err
#SBATCH --exclusive
#SBATCH --job-name=bignlp-download_gpt3_pile
#SBATCH --kill-on-invalid-dep=yes
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/download_gpt3_pile/extract/log-bignlp-download_gpt3_pile_%A_%a.out
#SBATCH --time=4:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob

# command 1
srun /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step extract
