#!/bin/bash
# bignlp data_preparation job 'custom_dataset', step 'preprocess' on this machine (job id 1000002), rendered from /results/custom_dataset/submissions/1/custom_dataset_hydra.yaml.
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

# command 1: 4 tasks, array element 0
( export SLURM_JOB_ID=1000002 SLURM_JOBID=1000002 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=0 LOCAL_RANK=0 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.err &
pid_0=$!
( export SLURM_JOB_ID=1000002 SLURM_JOBID=1000002 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=1 SLURM_LOCALID=1 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=1 LOCAL_RANK=1 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.err &
pid_1=$!
( export SLURM_JOB_ID=1000002 SLURM_JOBID=1000002 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=2 SLURM_LOCALID=2 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=2 LOCAL_RANK=2 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.err &
pid_2=$!
( export SLURM_JOB_ID=1000002 SLURM_JOBID=1000002 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=3 SLURM_LOCALID=3 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=3 LOCAL_RANK=3 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_0.err &
pid_3=$!
wait_all "$pid_0" "$pid_1" "$pid_2" "$pid_3"

# command 1: 4 tasks, array element 1
( export SLURM_JOB_ID=1000003 SLURM_JOBID=1000003 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=0 LOCAL_RANK=0 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.err &
pid_0=$!
( export SLURM_JOB_ID=1000003 SLURM_JOBID=1000003 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=1 SLURM_LOCALID=1 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=1 LOCAL_RANK=1 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.err &
pid_1=$!
( export SLURM_JOB_ID=1000003 SLURM_JOBID=1000003 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=2 SLURM_LOCALID=2 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=2 LOCAL_RANK=2 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.err &
pid_2=$!
( export SLURM_JOB_ID=1000003 SLURM_JOBID=1000003 SLURM_JOB_NAME=custom_dataset SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=4 SLURM_NPROCS=4 SLURM_NTASKS_PER_NODE=4 SLURM_PROCID=3 SLURM_LOCALID=3 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/custom_dataset/preprocess SLURM_ARRAY_JOB_ID=1000002 SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1 RANK=3 LOCAL_RANK=3 WORLD_SIZE=4 LOCAL_WORLD_SIZE=4 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30002
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/custom_dataset/submissions/1 --config-name custom_dataset_hydra.yaml --step preprocess
) >>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.out 2>>/results/custom_dataset/preprocess/log-custom_dataset_1000002_1.err &
pid_3=$!
wait_all "$pid_0" "$pid_1" "$pid_2" "$pid_3"
