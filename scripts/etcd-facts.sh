#!/bin/bash
# What etcd does on this kernel, for the controller cluster (#13): a
# 3-member cluster in 3 namespaces on one bridge (this machine only,
# 198.51.100.0/24, TEST-NET-2): boot, a write, a member cut off (writes
# and linearizable reads refused, serializable reads answered, the
# majority writes on), then the leader killed (time until writes are
# accepted again). Needs etcd-server and etcd-client (Debian), which
# `make setup` installs; run as root. Stops what it starts by
# PID and the namespaces it made. Results: docs/cluster.md.
set -u
for tool in etcd etcdctl bc; do
  command -v $tool >/dev/null || { echo "etcd-facts: needs $tool (apt-get install etcd-server etcd-client bc)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "etcd-facts: run as root (namespaces)" >&2; exit 2; }
trap cleanup EXIT
trap 'exit 130' INT TERM
BR=etcdx-br; NET=198.51.100
D=$(mktemp -d)
cleanup() {
  for i in 1 2 3; do [ -s $D/m$i.pid ] && kill $(cat $D/m$i.pid) 2>/dev/null; done
  for i in 1 2 3; do
    for _ in $(seq 50); do kill -0 $(cat $D/m$i.pid) 2>/dev/null || break; sleep 0.1; done
    kill -9 $(cat $D/m$i.pid) 2>/dev/null
  done
  for i in 1 2 3; do
    ip netns del etcdx$i 2>/dev/null; ip link del etcdx$i-r 2>/dev/null
  done
  ip link del $BR 2>/dev/null
}
ip link add $BR type bridge; ip addr add $NET.1/24 dev $BR; ip link set $BR up
CL=""
for i in 1 2 3; do
  ip netns add etcdx$i
  ip link add etcdx$i-r type veth peer name eth0 netns etcdx$i
  ip link set etcdx$i-r master $BR up
  ip -n etcdx$i addr add $NET.1$i/24 dev eth0; ip -n etcdx$i link set eth0 up; ip -n etcdx$i link set lo up
  CL="$CL${CL:+,}m$i=http://$NET.1$i:2380"
done
rm -rf $D; mkdir -p $D
t0=$(date +%s.%N)
for i in 1 2 3; do
  ip netns exec etcdx$i etcd --name m$i --data-dir $D/m$i \
    --listen-peer-urls http://$NET.1$i:2380 --initial-advertise-peer-urls http://$NET.1$i:2380 \
    --listen-client-urls http://$NET.1$i:2379,http://127.0.0.1:2379 --advertise-client-urls http://$NET.1$i:2379 \
    --initial-cluster $CL --initial-cluster-state new --initial-cluster-token x \
    --heartbeat-interval 100 --election-timeout 1000 --pre-vote > $D/m$i.log 2>&1 &
  echo $! > $D/m$i.pid
done
EP=http://$NET.11:2379,http://$NET.12:2379,http://$NET.13:2379
for k in $(seq 100); do etcdctl --endpoints=$EP endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
t1=$(date +%s.%N); echo "cluster healthy after $(echo "$t1 - $t0" | bc) s"
etcdctl --endpoints=$EP endpoint status -w table
time etcdctl --endpoints=$EP put /nsx/k1 v1
echo "--- partition a member (its link down), write through it"
L=$(etcdctl --endpoints=$EP endpoint status -w json | python3 -c "import json,sys; d=json.load(sys.stdin); print([e['Endpoint'] for e in d if e['Status']['leader']==e['Status']['header']['member_id']][0])"); n=${L:19:1}; m=$(( n % 3 + 1 )); echo "partition m$m (leader m$n)"; ip link set etcdx$m-r down
sleep 2
time ip netns exec etcdx$m etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=2s put /nsx/k3 v3; echo "rc=$?"
ip netns exec etcdx$m etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=2s get /nsx/k1 --consistency=s --print-value-only; echo "serializable read rc=$?"
ip netns exec etcdx$m etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=2s get /nsx/k1 --print-value-only; echo "linearizable read rc=$?"
ip link set etcdx$m-r up
time etcdctl --endpoints=http://$NET.1$n:2379 --command-timeout=2s put /nsx/k4 v4; echo "majority write rc=$?"
sleep 3; ip netns exec etcdx$m etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=2s get /nsx/k3 /nsx/k5 --print-value-only; echo "after healing, m$m reads (k3 refused while cut off, k4 written by the majority): rc=$?"
ip netns exec etcdx$m etcdctl --endpoints=http://127.0.0.1:2379 --command-timeout=2s get /nsx/k4 --print-value-only
echo "--- kill -9 the leader"
L=$(etcdctl --endpoints=$EP endpoint status -w json | python3 -c "import json,sys; d=json.load(sys.stdin); print([e['Endpoint'] for e in d if e['Status']['leader']==e['Status']['header']['member_id']][0])")
echo "leader $L"; n=${L:19:1}; kill -9 $(cat $D/m$n.pid)
t0=$(date +%s.%N)
for k in $(seq 100); do etcdctl --endpoints=$EP --command-timeout=1s put /nsx/k2 v2 >/dev/null 2>&1 && break; sleep 0.05; done
echo "write accepted again $(echo "$(date +%s.%N) - $t0" | bc) s after the leader's death"
etcdctl --endpoints=$EP get /nsx/k1 /nsx/k3 --print-value-only
for i in 1 2 3; do [ -s $D/m$i.pid ] && echo "m$i rss $(ps -o rss= -p $(cat $D/m$i.pid)) kB"; done
echo "member logs: $D"
