#!/usr/bin/env bash
# Delete the namespaces of segments-up.sh PREFIX. Stop the processes started inside them first (by PID).
# Usage: segments-down.sh PREFIX
P=${1:?usage: segments-down.sh PREFIX}
for ns in $P-box $P-mod $P-ris $P-off $P-up; do
  left=$(ip netns pids $ns 2>/dev/null | tr '\n' ' ')
  [ -n "$left" ] && echo "WARNING: processes still in $ns: $left (stop them by PID)" >&2
  ip netns del $ns 2>/dev/null && echo "deleted $ns" >&2
done
exit 0
