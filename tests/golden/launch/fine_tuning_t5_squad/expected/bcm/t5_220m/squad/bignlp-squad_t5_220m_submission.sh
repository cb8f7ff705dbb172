#!/bin/bash
# bignlp fine_tuning job 'bignlp-squad_t5_220m', rendered from /results/t5_220m/squad/submissions/1/squad_t5_220m_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=singleton
#SBATCH --error=/results/t5_220m/squad/log-bignlp-squad_t5_220m_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-squad_t5_220m
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --output=/results/t5_220m/squad/log-bignlp-squad_t5_220m_%j.out
#SBATCH --time=04:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
srun --nodes=1 --ntasks=1 --ntasks-per-node=1 /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --step prepare_squad --squad-dir /opt/bignlp/data/squad_data

# command 2
srun --kill-on-bad-exit=1 /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
