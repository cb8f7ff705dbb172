#!/bin/bash
# bignlp training job 't5_220m' on this machine (job id 1000001), rendered from /results/t5_220m/submissions/1/t5_220m_hydra.yaml.
# bignlp runs these processes itself (cluster_type=local); this script does the same by hand:
# one process per task, with the environment Slurm would give it, output appended to the logs.
set -e
wait_all() { local rc=0 p; for p in "$@"; do wait "$p" || rc=$?; done; return "$rc"; }

# setup
export SLURM_CPUS_ON_NODE="$(nproc)"
# the rendezvous store's secret: a fresh random token for this job, in every task's environment
export BIGNLP_STORE_SECRET="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export TRANSFORMERS_OFFLINE=1

# command 1: 32 tasks
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=0 LOCAL_RANK=0 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_0=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=1 SLURM_LOCALID=1 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=1 LOCAL_RANK=1 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_1=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=2 SLURM_LOCALID=2 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=2 LOCAL_RANK=2 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_2=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=3 SLURM_LOCALID=3 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=3 LOCAL_RANK=3 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_3=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=4 SLURM_LOCALID=4 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=4 LOCAL_RANK=4 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_4=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=5 SLURM_LOCALID=5 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=5 LOCAL_RANK=5 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_5=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=6 SLURM_LOCALID=6 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=6 LOCAL_RANK=6 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_6=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=7 SLURM_LOCALID=7 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=7 LOCAL_RANK=7 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_7=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=8 SLURM_LOCALID=0 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=8 LOCAL_RANK=0 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_8=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=9 SLURM_LOCALID=1 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=9 LOCAL_RANK=1 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_9=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=10 SLURM_LOCALID=2 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=10 LOCAL_RANK=2 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_10=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=11 SLURM_LOCALID=3 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=11 LOCAL_RANK=3 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_11=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=12 SLURM_LOCALID=4 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=12 LOCAL_RANK=4 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_12=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=13 SLURM_LOCALID=5 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=13 LOCAL_RANK=5 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_13=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=14 SLURM_LOCALID=6 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=14 LOCAL_RANK=6 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_14=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=15 SLURM_LOCALID=7 SLURM_NODEID=1 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=15 LOCAL_RANK=7 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_15=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=16 SLURM_LOCALID=0 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=16 LOCAL_RANK=0 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_16=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=17 SLURM_LOCALID=1 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=17 LOCAL_RANK=1 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_17=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=18 SLURM_LOCALID=2 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=18 LOCAL_RANK=2 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_18=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=19 SLURM_LOCALID=3 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=19 LOCAL_RANK=3 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_19=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=20 SLURM_LOCALID=4 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=20 LOCAL_RANK=4 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_20=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=21 SLURM_LOCALID=5 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=21 LOCAL_RANK=5 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_21=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=22 SLURM_LOCALID=6 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=22 LOCAL_RANK=6 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_22=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=23 SLURM_LOCALID=7 SLURM_NODEID=2 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=23 LOCAL_RANK=7 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_23=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=24 SLURM_LOCALID=0 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=24 LOCAL_RANK=0 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_24=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=25 SLURM_LOCALID=1 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=25 LOCAL_RANK=1 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_25=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=26 SLURM_LOCALID=2 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=26 LOCAL_RANK=2 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_26=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=27 SLURM_LOCALID=3 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=27 LOCAL_RANK=3 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_27=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=28 SLURM_LOCALID=4 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=28 LOCAL_RANK=4 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_28=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=29 SLURM_LOCALID=5 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=29 LOCAL_RANK=5 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_29=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=30 SLURM_LOCALID=6 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=30 LOCAL_RANK=6 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_30=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=t5_220m SLURM_NNODES=4 SLURM_JOB_NUM_NODES=4 SLURM_NTASKS=32 SLURM_NPROCS=32 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=31 SLURM_LOCALID=7 SLURM_NODEID=3 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m RANK=31 LOCAL_RANK=7 WORLD_SIZE=32 LOCAL_WORLD_SIZE=8 GROUP_RANK=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/submissions/1 --config-name t5_220m_hydra.yaml
) >>/results/t5_220m/log-t5_220m_1000001.out 2>>/results/t5_220m/log-t5_220m_1000001.err &
pid_31=$!
wait_all "$pid_0" "$pid_1" "$pid_2" "$pid_3" "$pid_4" "$pid_5" "$pid_6" "$pid_7" "$pid_8" "$pid_9" "$pid_10" "$pid_11" "$pid_12" "$pid_13" "$pid_14" "$pid_15" "$pid_16" "$pid_17" "$pid_18" "$pid_19" "$pid_20" "$pid_21" "$pid_22" "$pid_23" "$pid_24" "$pid_25" "$pid_26" "$pid_27" "$pid_28" "$pid_29" "$pid_30" "$pid_31"
