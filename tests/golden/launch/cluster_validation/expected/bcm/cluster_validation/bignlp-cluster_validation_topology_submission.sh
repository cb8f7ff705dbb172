#!/bin/bash
# bignlp cluster_validation job 'bignlp-cluster_validation_topology', rendered from /results/cluster_validation/submissions/1/cluster_validation_hydra.yaml.
# Change the config and run bignlp again rather than editing this file.

# Parameters
#SBATCH --error=/results/cluster_validation/log-bignlp-cluster_validation_topology_%j.err
#SBATCH --exclusive
#SBATCH --gpus-per-node=8
#SBATCH --job-name=bignlp-cluster_validation_topology
#SBATCH --mem=0
#SBATCH --nodelist=hpc-pg0-1
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/results/cluster_validation/log-bignlp-cluster_validation_topology_%j.out
#SBATCH --partition=hpc
#SBATCH --time=2:00:00

set -e
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# setup
export TRANSFORMERS_OFFLINE=1

# command 1
srun /opt/bignlp/build/bin/bignlp-validate --write-topology /opt/microsoft/ndv4-topo.xml
