#!/bin/bash
# bignlp training job 'bignlp-gpt3_tiny', rendered from /results/gpt3_tiny/submissions/1/gpt3_tiny_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=singleton
#SBATCH --error=/results/gpt3_tiny/log-bignlp-gpt3_tiny_%j.err
#SBATCH --exclusive
#SBATCH --job-name=bignlp-gpt3_tiny
#SBATCH --mem=0
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/gpt3_tiny/log-bignlp-gpt3_tiny_%j.out
#SBATCH --partition=hpc
#SBATCH --time=0:30:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export NCCL_TOPO_FILE=/opt/microsoft/ndv4-topo.xml
export UCX_IB_PCI_RELAXED_ORDERING=auto
export NCCL_IB_PCI_RELAXED_ORDERING=2
export NCCL_IB_TIMEOUT=22
export NCCL_DEBUG=INFO
export TRANSFORMERS_OFFLINE=1

# command 1
srun --container-image=nvcr.io/nvidia/bignlp:24.01 --container-mounts=/opt/bignlp:/opt/bignlp,/opt/bignlp/data:/opt/bignlp/data,/results:/results,/opt/microsoft:/opt/microsoft --no-container-mount-home /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/gpt3_tiny/submissions/1 --config-name gpt3_tiny_hydra.yaml
