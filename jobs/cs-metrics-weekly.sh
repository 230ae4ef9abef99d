#!/usr/bin/env bash
# Monday wrapper for the cs-metrics weekly job: sets paths, keeps a log per run,
# keeps a pointer to the latest log, and exits with the job's own status:
#   0 done; 2 bad invocation or unusable input; 3 another run holds the lock on OUT;
#   4 done, but an action was withheld (the data does not cover the week) or later stored weeks
#     went stale: the files are written, the log says what to do; 1 anything else.
#
# Settings (environment, or edit the defaults):
#   CS_METRICS_HOME  the cs-metrics checkout (its .venv is used)      default: this script's ../
#   CS_METRICS_DATA  folder with this week's exports                  required
#   CS_METRICS_OUT   output folder (reports, history.sqlite, logs/)   default: $CS_METRICS_HOME/out
#   CS_METRICS_CONFIG  optional policy TOML                           default: none
#   CS_METRICS_KEEP_LOGS  how many run logs to keep                   default: 60
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${CS_METRICS_HOME:-$(dirname "$here")}"
if [ -z "${CS_METRICS_DATA:-}" ]; then
    # Falling back to the bundled sample would report on shops that are not yours.
    echo "CS_METRICS_DATA is not set: point it at the folder of this week's exports" >&2
    exit 2
fi
data="$CS_METRICS_DATA"
out="${CS_METRICS_OUT:-$home/out}"
keep="${CS_METRICS_KEEP_LOGS:-60}"
bin="$home/.venv/bin/cs-metrics"
if [ ! -x "$bin" ]; then
    echo "cs-metrics is not installed in $home/.venv; run 'make test' or 'make report' there once" >&2
    exit 2
fi
mkdir -p "$out/logs"
log="$out/logs/weekly-$(date -u +%Y%m%dT%H%M%SZ).log"
args=(weekly --data "$data" --out "$out")
[ -n "${CS_METRICS_CONFIG:-}" ] && args+=(--config "$CS_METRICS_CONFIG")
args+=("$@")
echo "# $(date -u +%FT%TZ) cs-metrics ${args[*]}" >"$log"
"$bin" "${args[@]}" >>"$log" 2>&1
status=$?
echo "# $(date -u +%FT%TZ) exit status $status" >>"$log"
ln -sfn "$(basename "$log")" "$out/logs/latest.log"
# Keep the newest $keep run logs.
ls -1t "$out"/logs/weekly-*.log 2>/dev/null | tail -n +"$((keep + 1))" | xargs -r rm -f
if [ "$status" -ne 0 ]; then
    echo "cs-metrics weekly failed with status $status; see $log" >&2
fi
exit "$status"
