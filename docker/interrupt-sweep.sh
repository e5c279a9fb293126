#!/bin/sh
# SIGINT to every `ovat sweep` driver in this container: Tune's graceful stop, the sweep's run
# ended KILLED with its RESUME= hint. `make cluster-sweep` runs this in the head when it is
# stopped without a terminal, because `docker exec` passes no signal on to what it started.
# ([t]: the pattern does not match grep's own command line.)
for process in /proc/[0-9]*; do
    if tr '\0' ' ' < "$process/cmdline" 2>/dev/null | grep -q 'ova[t] sweep'; then
        kill -INT "${process#/proc/}" 2>/dev/null && echo "ovat: interrupted the sweep driver ${process#/proc/} in the head"
    fi
done
exit 0
