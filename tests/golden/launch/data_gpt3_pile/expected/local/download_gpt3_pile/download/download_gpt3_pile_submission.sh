#!/bin/bash
# bignlp data_preparation job 'download_gpt3_pile', step 'download' on this machine (job id 1000001), rendered from /results/download_gpt3_pile/submissions/1/download_gpt3_pile_hydra.yaml.
# bignlp runs these processes itself (cluster_type=local); this script does the same by hand:
# one process per task, with the environment Slurm would give it, output appended to the logs.
set -e
wait_all() { local rc=0 p; for p in "$@"; do wait "$p" || rc=$?; done; return "$rc"; }

# setup
export SLURM_CPUS_ON_NODE="$(nproc)"
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export TRANSFORMERS_OFFLINE=1
export NGC_ARRAY_TYPE=MPIJob

# command 1: 1 task, array element 0
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=download_gpt3_pile SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/download_gpt3_pile/download SLURM_ARRAY_JOB_ID=1000001 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=5 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=7 RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
) >>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_0.out 2>>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_0.err &
pid_0=$!
wait_all "$pid_0"

# command 1: 1 task, array element 3
( export SLURM_JOB_ID=1000002 SLURM_JOBID=1000002 SLURM_JOB_NAME=download_gpt3_pile SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/download_gpt3_pile/download SLURM_ARRAY_JOB_ID=1000001 SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_COUNT=5 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=7 RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
) >>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_3.out 2>>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_3.err &
pid_0=$!
wait_all "$pid_0"

# command 1: 1 task, array element 5
( export SLURM_JOB_ID=1000003 SLURM_JOBID=1000003 SLURM_JOB_NAME=download_gpt3_pile SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/download_gpt3_pile/download SLURM_ARRAY_JOB_ID=1000001 SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=5 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=7 RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
) >>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_5.out 2>>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_5.err &
pid_0=$!
wait_all "$pid_0"

# command 1: 1 task, array element 6
( export SLURM_JOB_ID=1000004 SLURM_JOBID=1000004 SLURM_JOB_NAME=download_gpt3_pile SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/download_gpt3_pile/download SLURM_ARRAY_JOB_ID=1000001 SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_COUNT=5 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=7 RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
) >>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_6.out 2>>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_6.err &
pid_0=$!
wait_all "$pid_0"

# command 1: 1 task, array element 7
( export SLURM_JOB_ID=1000005 SLURM_JOBID=1000005 SLURM_JOB_NAME=download_gpt3_pile SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/download_gpt3_pile/download SLURM_ARRAY_JOB_ID=1000001 SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_COUNT=5 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=7 RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/download_gpt3_pile/submissions/1 --config-name download_gpt3_pile_hydra.yaml --step download
) >>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_7.out 2>>/results/download_gpt3_pile/download/log-download_gpt3_pile_1000001_7.err &
pid_0=$!
wait_all "$pid_0"
