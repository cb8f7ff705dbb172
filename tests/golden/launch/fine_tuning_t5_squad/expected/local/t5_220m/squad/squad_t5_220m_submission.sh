#!/bin/bash
# bignlp fine_tuning job 'squad_t5_220m' on this machine (job id 1000001), rendered from /results/t5_220m/squad/submissions/1/squad_t5_220m_hydra.yaml.
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
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=1 SLURM_NPROCS=1 SLURM_NTASKS_PER_NODE=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=0 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-preprocess --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --step prepare_squad --squad-dir /opt/bignlp/data/squad_data
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_0=$!
wait_all "$pid_0"

# command 2: 8 tasks
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=0 LOCAL_RANK=0 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_0=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=1 SLURM_LOCALID=1 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=1 LOCAL_RANK=1 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_1=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=2 SLURM_LOCALID=2 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=2 LOCAL_RANK=2 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_2=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=3 SLURM_LOCALID=3 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=3 LOCAL_RANK=3 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_3=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=4 SLURM_LOCALID=4 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=4 LOCAL_RANK=4 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_4=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=5 SLURM_LOCALID=5 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=5 LOCAL_RANK=5 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_5=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=6 SLURM_LOCALID=6 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=6 LOCAL_RANK=6 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_6=$!
( export SLURM_JOB_ID=1000001 SLURM_JOBID=1000001 SLURM_JOB_NAME=squad_t5_220m SLURM_NNODES=1 SLURM_JOB_NUM_NODES=1 SLURM_NTASKS=8 SLURM_NPROCS=8 SLURM_NTASKS_PER_NODE=8 SLURM_PROCID=7 SLURM_LOCALID=7 SLURM_NODEID=0 SLURM_STEP_ID=1 SLURM_JOB_NODELIST=localhost SLURM_NODELIST=localhost SLURMD_NODENAME=localhost SLURM_SUBMIT_DIR=/results/t5_220m/squad RANK=7 LOCAL_RANK=7 WORLD_SIZE=8 LOCAL_WORLD_SIZE=8 GROUP_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=30001
exec /opt/bignlp/build/bin/bignlp-bind --mode unique_contiguous --scope node --cores all_logical --balanced true --min-cores 1 --max-cores 8 -- /opt/bignlp/build/bin/bignlp-train --config-path /results/t5_220m/squad/submissions/1 --config-name squad_t5_220m_hydra.yaml --stage fine_tuning
) >>/results/t5_220m/squad/log-squad_t5_220m_1000001.out 2>>/results/t5_220m/squad/log-squad_t5_220m_1000001.err &
pid_7=$!
wait_all "$pid_0" "$pid_1" "$pid_2" "$pid_3" "$pid_4" "$pid_5" "$pid_6" "$pid_7"
