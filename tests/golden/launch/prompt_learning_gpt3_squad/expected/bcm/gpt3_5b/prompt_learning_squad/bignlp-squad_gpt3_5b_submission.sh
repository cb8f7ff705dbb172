#!/bin/bash
# bignlp prompt_learning job 'bignlp-squad_gpt3_5b', rendered from /results/gpt3_5b/prompt_learning_squad/submissions/1/squad_gpt3_5b_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=singleton
#SBATCH --error=/results/gpt3_5b/prompt_learning_squad/log-bignlp-squad_gpt3_5b_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-squad_gpt3_5b
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --output=/results/gpt3_5b/prompt_learning_squad/log-bignlp-squad_gpt3_5b_%j.out
#SBATCH --time=04:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
srun --nodes=1 --ntasks=1 --ntasks-per-node=1 /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/gpt3_5b/prompt_learning_squad/submissions/1 --config-name squad_gpt3_5b_hydra.yaml --step squad_prompt_learning

# command 2
srun --kill-on-bad-exit=1 /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/gpt3_5b/prompt_learning_squad/submissions/1 --config-name squad_gpt3_5b_hydra.yaml --stage prompt_learning
