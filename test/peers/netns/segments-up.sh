#!/usr/bin/env bash
# The hospital segments around one box, all in network namespaces (nothing is added to the root
# namespace; its routes never see these addresses):
#   $P-box  the box: $P-mod 10.231.1.1, $P-ris 10.231.2.1, $P-off 10.231.3.1, $P-up 10.231.4.1 (/24 each)
#   $P-mod  a modality segment host 10.231.1.10     $P-ris  the RIS 10.231.2.10
#   $P-off  an office PC 10.231.3.10                $P-up   upstream 10.231.4.10 (listed) and .20 (not listed)
# The modality and office hosts route everything through the box, so forwarding through it can be tried.
# Usage: segments-up.sh PREFIX        Teardown: segments-down.sh PREFIX
set -euo pipefail
P=${1:?usage: segments-up.sh PREFIX}
[ ${#P} -le 8 ] || { echo "PREFIX at most 8 characters (interface names)" >&2; exit 2; }
BOX=$P-box
for ns in $BOX $P-mod $P-ris $P-off $P-up; do
  ip netns list | grep -qw "^$ns" && { echo "netns $ns exists (run segments-down.sh $P)" >&2; exit 1; }
done
ip netns add $BOX; ip -n $BOX link set lo up
n=1
for seg in mod ris off up; do
  ns=$P-$seg
  ip netns add $ns; ip -n $ns link set lo up
  ip link add $P-$seg netns $BOX type veth peer name eth0 netns $ns
  ip -n $BOX addr add 10.231.$n.1/24 dev $P-$seg; ip -n $BOX link set $P-$seg up
  ip -n $ns addr add 10.231.$n.10/24 dev eth0; ip -n $ns link set eth0 up
  ip -n $ns route add default via 10.231.$n.1
  n=$((n+1))
done
ip -n $P-up addr add 10.231.4.20/24 dev eth0
# veth links carry IPv4 as soon as both ends are up (no DAD, no bridge forwarding delay).
echo "segments up: $BOX mod=10.231.1.10 ris=10.231.2.10 office=10.231.3.10 upstream=10.231.4.10,.20" >&2
