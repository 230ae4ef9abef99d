#!/usr/bin/env bash
# Monday wrapper for the cs-metrics weekly job: sets paths, keeps a log per run,
# keeps a pointer to the latest log, and exits with the job's own status:
#   0 done; 2 bad invocation or unusable input; 3 another run holds the lock on OUT;
#   4 done, but an action was withheld (the data does not cover the week) or later stored weeks
#     went stale, or the fetch (below) could not fetch everything: the files are written, the
#     log says what to do; 1 anything else.
#
# Settings (environment, or edit the defaults):
#   CS_METRICS_HOME  the cs-metrics checkout (its .venv is used)      default: this script's ../
#   CS_METRICS_DATA  folder with this week's exports                  required without a store
#   CS_METRICS_OUT   output folder (reports, history.sqlite, logs/)   default: $CS_METRICS_HOME/out
#   CS_METRICS_CONFIG  optional policy TOML                           default: none
#   CS_METRICS_KEEP_LOGS  how many run logs to keep                   default: 60
# Fetching from the TikTok Shop Open API first (docs/fetch.md), only when the store is set:
#   CS_METRICS_TIKTOK_STORE  the store `cs-metrics fetch tiktok` keeps; fetched, then evaluated
#                            (it is the data folder: leave CS_METRICS_DATA unset)
#   CS_METRICS_TIKTOK_CREDENTIALS  the fetch's credentials file       required with the store
#   CS_METRICS_FETCH_ARGS    more options for the fetch, split on spaces (e.g. "--shop 7495...")
#   TIKTOK_APP_KEY, TIKTOK_APP_SECRET  the app's key and secret (read by the fetch itself)
# The fetch's status decides: 0 (all fetched) or 4 (partial: what is missing is named in the
# log) run the weekly job, whose cut-off is then the store's complete_until, so a week the
# fetch did not complete is withheld, not judged; 2 (bad invocation or credentials) or any
# other status stops here, with that status.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${CS_METRICS_HOME:-$(dirname "$here")}"
store="${CS_METRICS_TIKTOK_STORE:-}"
if [ -n "$store" ] && [ -z "${CS_METRICS_TIKTOK_CREDENTIALS:-}" ]; then
    echo "CS_METRICS_TIKTOK_STORE is set but CS_METRICS_TIKTOK_CREDENTIALS is not: point it at the fetch's credentials file (docs/fetch.md)" >&2
    exit 2
fi
if [ -n "$store" ] && [ -n "${CS_METRICS_DATA:-}" ] && [ "$(realpath -m -- "$CS_METRICS_DATA")" != "$(realpath -m -- "$store")" ]; then
    # Evaluating other exports than the store just fetched would judge shops on stale data.
    echo "CS_METRICS_DATA and CS_METRICS_TIKTOK_STORE name different folders: with a store, the store is the data; unset CS_METRICS_DATA" >&2
    exit 2
fi
if [ -z "${CS_METRICS_DATA:-}" ] && [ -z "$store" ]; then
    # Falling back to the bundled sample would report on shops that are not yours.
    echo "CS_METRICS_DATA is not set: point it at the folder of this week's exports" >&2
    exit 2
fi
data="${store:-$CS_METRICS_DATA}"
out="${CS_METRICS_OUT:-$home/out}"
keep="${CS_METRICS_KEEP_LOGS:-60}"
bin="$home/.venv/bin/cs-metrics"
if [ ! -x "$bin" ]; then
    echo "cs-metrics is not installed in $home/.venv; run 'make test' or 'make report' there once" >&2
    exit 2
fi
mkdir -p "$out/logs"
log="$out/logs/weekly-$(date -u +%Y%m%dT%H%M%SZ).log"
: >"$log"
ln -sfn "$(basename "$log")" "$out/logs/latest.log"
# Keep the newest $keep run logs.
ls -1t "$out"/logs/weekly-*.log 2>/dev/null | tail -n +"$((keep + 1))" | xargs -r rm -f

fetched=0
if [ -n "$store" ]; then
    fetch=(fetch tiktok --store "$store" --credentials "$CS_METRICS_TIKTOK_CREDENTIALS")
    # Word splitting on purpose (a list of options in one variable), but no globbing.
    set -f
    # shellcheck disable=SC2206
    [ -n "${CS_METRICS_FETCH_ARGS:-}" ] && fetch+=($CS_METRICS_FETCH_ARGS)
    set +f
    echo "# $(date -u +%FT%TZ) cs-metrics ${fetch[*]}" >>"$log"
    "$bin" "${fetch[@]}" >>"$log" 2>&1
    fetched=$?
    echo "# $(date -u +%FT%TZ) fetch exit status $fetched" >>"$log"
    if [ "$fetched" -eq 4 ]; then
        echo "# the fetch is partial: weekly runs on what was fetched, with the store's complete_until as its cut-off" >>"$log"
    elif [ "$fetched" -ne 0 ]; then
        echo "# weekly not run: the fetch failed" >>"$log"
        echo "cs-metrics fetch tiktok failed with status $fetched, so weekly did not run; see $log" >&2
        exit "$fetched"
    fi
fi

args=(weekly --data "$data" --out "$out")
[ -n "${CS_METRICS_CONFIG:-}" ] && args+=(--config "$CS_METRICS_CONFIG")
args+=("$@")
echo "# $(date -u +%FT%TZ) cs-metrics ${args[*]}" >>"$log"
"$bin" "${args[@]}" >>"$log" 2>&1
status=$?
echo "# $(date -u +%FT%TZ) exit status $status" >>"$log"
if [ "$fetched" -eq 4 ]; then
    echo "cs-metrics fetch tiktok could not fetch everything (status 4; named in the log); weekly ran up to the store's complete_until; see $log" >&2
fi
if [ "$status" -ne 0 ]; then
    echo "cs-metrics weekly failed with status $status; see $log" >&2
elif [ "$fetched" -eq 4 ]; then
    status=4
fi
exit "$status"
