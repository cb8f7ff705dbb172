#!/bin/bash
# bignlp training job 'gpt3_tiny' on this machine (job id 1000001), rendered from /results/gpt3_tiny/submissions/1/gpt3_tiny_hydra.yaml.
# bignlp runs these processes itself (cluster_type=local); this script does the same by hand:
# one process per task, with the environment Slurm would give it, output appended to the logs.
set -e
wait_all() { local rc=0 p; for p in "$@"; do wait "$p" || rc=$?; done; return "$rc"; }

# setup
export SLURM_CPUS_ON_NODE="$(nproc)"
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export NCCL_TOPO_FILE=/opt/microsoft/ndv4-topo.xml
export UCX_IB_PCI_RELAXED_ORDERING=auto
export NCCL_IB_PCI_RELAXED_ORDERING=2
export NCCL_IB_TIMEOUT=22
export NCCL_DEBUG=INFO
export TRANSFORMERS_OFFLINE=1

# command 1: 1 task
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=gpt3_tiny SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/gpt3_tiny RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/gpt3_tiny/submissions/1 --config-name gpt3_tiny_hydra.yaml
) >>/results/gpt3_tiny/log-gpt3_tiny_1000001.out 2>>/results/gpt3_tiny/log-gpt3_tiny_1000001.err &
pid_0=$!
wait_all "$pid_0"
