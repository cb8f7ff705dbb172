#!/bin/bash
# bignlp training job 'bignlp-gpt3_175b', rendered from /results/gpt3_175b/submissions/1/gpt3_175b_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --account=my-team
#SBATCH --dependency=singleton
#SBATCH --error=/results/gpt3_175b/log-bignlp-gpt3_175b_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-gpt3_175b
#SBATCH --mem=0
#SBATCH --nodes=128
#SBATCH --ntasks-per-node=8
#SBATCH --output=/results/gpt3_175b/log-bignlp-gpt3_175b_%j.out
#SBATCH --partition=batch
#SBATCH --time=35-00:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1
export CUDA_DEVICE_MAX_CONNECTIONS=1

# command 1
srun --kill-on-bad-exit=1 --container-image=nvcr.io/nvidia/bignlp:24.01 --container-mounts=/opt/bignlp:/opt/bignlp,/opt/bignlp/data:/opt/bignlp/data,/results:/results --no-container-mount-home /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/gpt3_175b/submissions/1 --config-name gpt3_175b_hydra.yaml
