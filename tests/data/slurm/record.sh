#!/bin/bash
# Record real squeue/scontrol text for tests/data/slurm (run only while the one-node SLURM answers).
set -u
out=${1:-/tmp/fake-slurm/rec}
mkdir -p "$out" && cd "$out" || exit 1
sub() { sbatch --parsable --output=/dev/null "$@" | cut -d';' -f1; }
run=$(sub --job-name=ag2-running --time=00:05:00 --wrap "sleep 150")
dep=$(sub --job-name=ag2-dependency --dependency=afterok:$run --wrap "true")
held=$(sub --job-name=ag2-held --hold --wrap "true")
ok=$(sub --job-name=ag2-completed --wrap "true")
bad=$(sub --job-name=ag2-failed --wrap "false")
sig=$(sub --job-name=ag2-signalled --wrap 'kill -9 $$')
cxr=$(sub --job-name=ag2-cancelled-running --wrap "sleep 150")
cxq=$(sub --job-name=ag2-cancelled-pending --hold --wrap "true")
tmo=$(sub --job-name=ag2-timeout --time=00:01:00 --wrap "sleep 300")
bun=$(sub --job-name=ag2-b1,ag2-b2 --wrap "true")
echo "run=$run dep=$dep held=$held ok=$ok bad=$bad sig=$sig cxr=$cxr cxq=$cxq tmo=$tmo bun=$bun" > ids.txt
sleep 15
scancel "$cxr" "$cxq"
sleep 5
squeue --me --noheader --states=all '--format=%i|%T|%r|%j' > squeue_early.txt
for id in $run $dep $held $ok $bad $sig $cxr $cxq $tmo $bun; do
  scontrol --oneliner show job "$id" > "scontrol_early_$id.txt" 2>&1
done
# the timeout job ends after 60 s (+ SLURM's kill wait)
for i in $(seq 1 40); do
  state=$(squeue --noheader -j "$tmo" --states=all -o %T 2>/dev/null)
  [ "$state" = "TIMEOUT" ] && break
  sleep 5
done
squeue --me --noheader --states=all '--format=%i|%T|%r|%j' > squeue_late.txt
for id in $run $dep $held $ok $bad $sig $cxr $cxq $tmo $bun; do
  scontrol --oneliner show job "$id" > "scontrol_late_$id.txt" 2>&1
done
scontrol --oneliner show job 999999999 > scontrol_unknown.txt 2> scontrol_unknown_stderr.txt; echo "exit $?" >> scontrol_unknown_stderr.txt
scancel 999999999 > scancel_unknown.txt 2> scancel_unknown_stderr.txt; echo "exit $?" >> scancel_unknown_stderr.txt
scancel "$run" "$dep" "$held" "$tmo" 2>/dev/null
echo done
