#!/bin/bash
# bignlp cluster_validation job 'cluster_validation_topology' on this machine (job id 1000001), rendered from /results/cluster_validation/submissions/1/cluster_validation_hydra.yaml.
# bignlp runs these processes itself (cluster_type=local); this script does the same by hand:
# one process per task, with the environment Slurm would give it, output appended to the logs.
set -e
wait_all() { local rc=0 p; for p in "$@"; do wait "$p" || rc=$?; done; return "$rc"; }

# setup
export SLURM_CPUS_ON_NODE="$(nproc)"
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export TRANSFORMERS_OFFLINE=1

# command 1: 1 task
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=cluster_validation_topology SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/cluster_validation RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-validate --write-topology /opt/microsoft/ndv4-topo.xml
) >>/results/cluster_validation/log-cluster_validation_topology_1000001.out 2>>/results/cluster_validation/log-cluster_validation_topology_1000001.err &
pid_0=$!
wait_all "$pid_0"
