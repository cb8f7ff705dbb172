#!/usr/bin/env bash
# bignlp-validate on this machine (--runner local): see CMakeLists.txt. Usage: validate_test.sh BIN_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/bignlp-validate.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# A dcgmi that prints DCGM's result table; the node named by FAKE_DCGM_FAIL fails its memory test.
mkdir -p "$work/path"
cat >"$work/path/dcgmi" <<'SH'
#!/bin/bash
[ "$1 $2" = "diag -r" ] || { echo "Error: unexpected arguments $*"; exit 2; }
echo "Successfully ran diagnostic for group."
echo "+---------------------------+------------------------------------------------+"
echo "| Diagnostic                | Result                                         |"
echo "+===========================+================================================+"
echo "|-----  Deployment  --------+------------------------------------------------|"
echo "| Denylist                  | Pass                                           |"
echo "+-----  Hardware  ----------+------------------------------------------------+"
if [ "$BIGNLP_VALIDATE_NODE" = "${FAKE_DCGM_FAIL:-}" ]; then
  echo "| GPU Memory                | Fail - GPU: 3                                  |"
  echo "| Warning                   | GPU 3 DBE detected                             |"
else
  echo "| GPU Memory                | Pass - All                                     |"
fi
echo "+---------------------------+------------------------------------------------+"
SH
# A bench_comm whose pairs with FAKE_SLOW in them are slow (a slow node).
cat >"$work/path/fake_bench_comm" <<'SH'
#!/bin/bash
bw=180.5
case ",$BIGNLP_VALIDATE_NODES," in *",${FAKE_SLOW:-none},"*) bw=40.25 ;; esac
echo "# bench_comm: backend nccl, 16 ranks"
echo "collective              size        count      time_us   algbw_GB/s   busbw_GB/s"
echo "all_reduce           1.0 GiB    268435456     11000.5       97.610      $bw"
SH
chmod +x "$work/path/dcgmi" "$work/path/fake_bench_comm"
export PATH="$work/path:$PATH"

# 1. dcgm fails on n3; real gloo bandwidth on a ring of 4 (the relative rule off: loopback is noisy).
out=$(FAKE_DCGM_FAIL=n3 "$bin/bignlp-validate" --nodes 4 --nodelist 'n[1-4]' --runner local --backend gloo \
  --message-bytes 262144 --iters 2 --slow-fraction 0 --results-dir "$work/r1" 2>&1)
rc=$?
[ $rc = 1 ] && pass "a failing node exits 1" || fail "exit status $rc, expected 1: $out"
grep -q "^Failing nodes (1 of 4): n3$" <<<"$out" && pass "n3 is listed as failing" || fail "failing list: $out"
grep -q "n3: GPU diagnostics: dcgmi test 'GPU Memory' failed (GPU: 3; Warning: GPU 3 DBE detected)" <<<"$out" &&
  pass "the failed test and its warning are reported" || fail "reason missing: $out"
n=$(ls "$work/r1/dcgm" | wc -l)
[ "$n" = 4 ] && pass "one dcgm log per node" || fail "$n dcgm logs"
for p in n1__n2 n2__n3 n3__n4 n4__n1; do
  [ -f "$work/r1/bandwidth/$p.log" ] || fail "no bandwidth log for $p"
done
# Each gloo pair printed a real bus bandwidth (> 0) that the summary shows.
nums=$(grep -E '^  n[0-9] \+ n[0-9] +[0-9.]+ GB/s$' "$work/r1/summary.txt" | awk '$4 > 0' | wc -l)
[ "$nums" = 4 ] && pass "4 measured gloo pairs" || fail "measured pairs: $nums; $(cat "$work/r1/summary.txt")"
grep -q "all_reduce" "$work/r1/bandwidth/n1__n2.log" && pass "bench_comm's table is in the pair log" ||
  fail "pair log: $(cat "$work/r1/bandwidth/n1__n2.log")"

# 2. one slow node among 5 (fake bench_comm): only it fails; --nccl skips the diagnostics.
out=$(FAKE_SLOW=hpc-pg0-10 "$bin/bignlp-validate" --nccl --nodes 5 --nodelist 'hpc-pg0-[1-3,10],gpu02' --runner local \
  --bench-comm "$work/path/fake_bench_comm" --results-dir "$work/r2" 2>&1)
rc=$?
[ $rc = 1 ] && pass "a slow node exits 1" || fail "exit status $rc: $out"
grep -q "^Failing nodes (1 of 5): hpc-pg0-10$" <<<"$out" && pass "only the slow node fails" || fail "$out"
[ ! -d "$work/r2/dcgm" ] && pass "--nccl runs no diagnostics" || fail "dcgm ran with --nccl"

# 3. everything passes: exit 0.
out=$("$bin/bignlp-validate" --nodes 3 --nodelist 'a[01-03]' --runner local --bench-comm "$work/path/fake_bench_comm" \
  --results-dir "$work/r3" 2>&1)
rc=$?
[ $rc = 0 ] && grep -q "All 3 node(s) passed" <<<"$out" && pass "all pass: exit 0" || fail "exit $rc: $out"

# 4. bad node lists are refused.
out=$("$bin/bignlp-validate" --nodes 3 --nodelist 'n[1-4' --runner local 2>&1)
[ $? = 1 ] && grep -q "without its ']'" <<<"$out" && pass "bad node list refused" || fail "$out"
out=$("$bin/bignlp-validate" --nodes 3 --nodelist 'n[1-4]' --runner local 2>&1)
[ $? = 2 ] && grep -q "names 4 node(s)" <<<"$out" && pass "count mismatch refused" || fail "$out"

# 5. the stage through the launcher, run locally: its job fails because n2 fails, and says so.
out=$(cd "$work" && FAKE_DCGM_FAIL=n2 "$bin/bignlp" 'stages=[cluster_validation]' cluster_type=local \
  base_results_dir="$work/results" cluster_validation.nodes=2 'cluster_validation.nodelist="n[1-2]"' \
  cluster_validation.backend=gloo cluster_validation.message_bytes=65536 2>&1)
rc=$?
[ $rc != 0 ] && pass "the stage's job fails with a failing node (exit $rc)" || fail "stage exit 0: $out"
grep -q "^Failing nodes (1 of 2): n2$" "$work/results/cluster_validation/summary.txt" &&
  pass "the stage wrote results/cluster_validation/summary.txt" || fail "summary: $(ls -R "$work/results")"

# 6. the topology file from a fake sysfs: well-formed XML that NCCL's element names describe.
root=$work/sysfs
dev() {
  local d=$root/sys/bus/pci/devices/$1
  mkdir -p "$d"
  echo "$2" >"$d/vendor"; echo "$3" >"$d/class"; echo "$4" >"$d/numa_node"
  echo "16.0 GT/s PCIe" >"$d/current_link_speed"; echo 16 >"$d/current_link_width"
}
dev 0001:00:00.0 0x10de 0x030200 0
dev 0101:00:00.0 0x15b3 0x020700 0
dev 0002:00:00.0 0x10de 0x030200 1
dev 0102:00:00.0 0x15b3 0x020700 1
"$bin/bignlp-validate" --write-topology "$work/topo.xml" --sysfs-root "$root" >/dev/null ||
  fail "--write-topology failed"
python3 - "$work/topo.xml" <<'PY' && pass "topology XML parses: 2 NUMA nodes, GPU and NIC under each bridge" || fail "topology XML"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.tag == "system" and r.get("version") == "1", r.tag
cpus = r.findall("cpu")
assert [c.get("numaid") for c in cpus] == ["0", "1"], cpus
for c in cpus:
    bridges = c.findall("pci")
    assert len(bridges) == 1 and bridges[0].get("class") == "0x060400"
    kids = [p.get("class") for p in bridges[0].findall("pci")]
    assert kids == ["0x030200", "0x020700"], kids
PY

echo "$failures failure(s)"
[ $failures = 0 ]
