#!/bin/bash
# bignlp cluster_validation job 'bignlp-cluster_validation', rendered from /results/cluster_validation/submissions/1/cluster_validation_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --dependency=afterok:1000001
#SBATCH --error=/results/cluster_validation/log-bignlp-cluster_validation_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-cluster_validation
#SBATCH --kill-on-invalid-dep=yes
#SBATCH --mem=0
#SBATCH --nodelist='hpc-pg0-[1-8,10]'
#SBATCH --nodes=9
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/cluster_validation/log-bignlp-cluster_validation_%j.out
#SBATCH --partition=hpc
#SBATCH --time=2:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
srun --nodes=1 --ntasks=1 --ntasks-per-node=1 --container-image=nvcr.io/nvidia/bignlp:24.01 --container-mounts=/opt/bignlp:/opt/bignlp,/opt/bignlp/data:/opt/bignlp/data,/results:/results --no-container-mount-home /opt/bignlp/build/bin/bignlp-validate --nodes=9 '--nodelist=hpc-pg0-[1-8,10]' --partition=hpc --runner=srun --results-dir=/results/cluster_validation --dcgm-level=1 --backend=nccl --tasks-per-node=8 --message-bytes=1073741824 --slow-fraction=0.8 --bench-comm=/opt/bignlp/build/bin/bench_comm
