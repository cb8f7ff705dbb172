#!/bin/bash
# bignlp export job 'bignlp-export_gpt3_5b', rendered from /results/gpt3_5b/export_tp8_pp1_fp16_fp16/submissions/1/export_gpt3_5b_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=singleton
#SBATCH --error=/results/gpt3_5b/export_tp8_pp1_fp16_fp16/log-bignlp-export_gpt3_5b_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-export_gpt3_5b
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/gpt3_5b/export_tp8_pp1_fp16_fp16/log-bignlp-export_gpt3_5b_%j.out
#SBATCH --time=2:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
srun --container-image=nvcr.io/nvidia/bignlp:24.01 --container-mounts=/opt/bignlp:/opt/bignlp,/opt/bignlp/data:/opt/bignlp/data,/results:/results --no-container-mount-home /opt/bignlp/build/bin/bignlp-export --config-path /results/gpt3_5b/export_tp8_pp1_fp16_fp16/submissions/1 --config-name export_gpt3_5b_hydra.yaml
