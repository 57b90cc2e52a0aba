#!/bin/sh
# Control script of the blue-green router, run inside the nginx container (POSIX sh, no bash).
#
#   router.sh switch live|preview blue|green   flip a route: one atomic file operation, no reload
#   router.sh maintenance on|off               storefront 503 + page (or back): one file operation, no reload
#   router.sh canary PERCENT                   send PERCENT of clients (0-100, sticky by client) on
#                                              the live route to the preview color: files, no reload
#   router.sh status                           print the color of each route and the maintenance state
#   router.sh apply < config                   install a new nginx config: nginx -t, then reload;
#                                              a refused config is rolled back and the call fails
#   router.sh boot                             container entry point: start nginx from a config
#                                              that validates, so a bad file never crash-loops it
#   router.sh metrics UDP HTTP BUCKETS         (re)start the traffic-figures exporter (metrics.pl)
#                                              with these ports; boot starts it again from then on
#
# nginx reads the state per request (`if (-f $state_dir/live-green)`), so `switch` changes which
# color answers the next request while every open connection keeps going.
set -eu

conf_dir=${BLUEGREEN_CONF_DIR:-/etc/nginx/conf.d}
nginx_cmd=${BLUEGREEN_NGINX:-nginx}
own_dir=$conf_dir/bluegreen
state_dir=$own_dir/state
config=$conf_dir/bluegreen.conf
last_good=$own_dir/last-good.conf
exporter=$own_dir/metrics.pl
exporter_args=$own_dir/metrics.args
# The exporter lives as long as this process (nginx's master: pid 1 in the container) and writes
# its complaints to the container's log.
master_pid=${BLUEGREEN_MASTER_PID:-1}
exporter_log=${BLUEGREEN_METRICS_LOG:-/proc/1/fd/2}

refuse() {
    echo "bluegreen-router: refusing: $*" >&2
    exit 2
}

color_of() {
    if [ -f "$state_dir/$1-green" ]; then echo green; else echo blue; fi
}

cmd_switch() {
    route=${1-}
    color=${2-}
    case "$route" in
        live | preview) ;;
        *) refuse "route must be 'live' or 'preview', got '$route'" ;;
    esac
    case "$color" in
        blue | green) ;;
        *) refuse "color must be 'blue' or 'green', got '$color'" ;;
    esac
    mkdir -p "$state_dir"
    previous=$(color_of "$route")
    if [ "$color" = green ]; then
        # rename(2) is atomic: a request sees either no file or the complete one.
        marker=$(mktemp "$state_dir/.$route.XXXXXX")
        mv -f "$marker" "$state_dir/$route-green"
    else
        rm -f "$state_dir/$route-green"
    fi
    echo "route=$route previous=$previous current=$color"
}

maintenance_state() {
    if [ -f "$state_dir/maintenance" ]; then echo on; else echo off; fi
}

cmd_maintenance() {
    wanted=${1-}
    case "$wanted" in
        on | off) ;;
        *) refuse "maintenance must be 'on' or 'off', got '$wanted'" ;;
    esac
    mkdir -p "$state_dir"
    previous=$(maintenance_state)
    if [ "$wanted" = on ]; then
        marker=$(mktemp "$state_dir/.maintenance.XXXXXX")
        mv -f "$marker" "$state_dir/maintenance"
    else
        rm -f "$state_dir/maintenance"
    fi
    echo "maintenance=$wanted previous=$previous"
}

# The live route's clients fall in 100 buckets (split_clients in http.conf.tmpl); a bucket whose
# file exists in canary/ goes to the preview color. PERCENT files: buckets 0..PERCENT-1.
canary_percent() {
    count=0
    for file in "$state_dir"/canary/*; do
        [ -f "$file" ] && count=$((count + 1))
    done
    echo "$count"
}

cmd_canary() {
    wanted=${1-}
    case "$wanted" in
        [0-9] | [1-9][0-9] | 100) ;;
        *) refuse "canary needs a percentage from 0 to 100, got '$wanted'" ;;
    esac
    mkdir -p "$state_dir/canary"
    previous=$(canary_percent)
    bucket=0
    while [ "$bucket" -lt 100 ]; do
        file=$state_dir/canary/$bucket
        if [ "$bucket" -lt "$wanted" ]; then
            if [ ! -f "$file" ]; then
                marker=$(mktemp "$state_dir/.canary.XXXXXX")
                mv -f "$marker" "$file"
            fi
        else
            rm -f "$file"
        fi
        bucket=$((bucket + 1))
    done
    echo "canary=$wanted previous=$previous"
}

cmd_status() {
    echo "live=$(color_of live) preview=$(color_of preview) maintenance=$(maintenance_state) canary=$(canary_percent)"
}

nginx_test() {
    # shellcheck disable=SC2086 # BLUEGREEN_NGINX may carry flags (-c, -p) on purpose
    $nginx_cmd -t 2>&1
}

cmd_apply() {
    mkdir -p "$state_dir"
    incoming=$(mktemp "$own_dir/.incoming.XXXXXX")
    cat >"$incoming"
    if [ ! -s "$incoming" ]; then
        rm -f "$incoming"
        refuse "empty config on stdin"
    fi
    if [ -f "$config" ] && cmp -s "$incoming" "$config"; then
        rm -f "$incoming"
        echo "config unchanged"
        return 0
    fi
    previous=
    if [ -f "$config" ]; then
        previous=$own_dir/previous.conf
        cp -p "$config" "$previous"
    fi
    mv -f "$incoming" "$config"
    # The image's welcome server would compete with ours for port 80.
    rm -f "$conf_dir/default.conf"
    if ! output=$(nginx_test); then
        if [ -n "$previous" ]; then mv -f "$previous" "$config"; else rm -f "$config"; fi
        echo "bluegreen-router: nginx -t refused the new config; the previous config stays live:" >&2
        echo "$output" >&2
        exit 1
    fi
    cp "$config" "$last_good"
    # shellcheck disable=SC2086
    $nginx_cmd -s reload
    echo "config applied and nginx reloaded"
}

# Every process of this router's exporter (its supervisor loop and perl itself), found by the
# paths on their command lines, which are this router's own. Anchored on the program: a shell
# whose script text merely mentions the exporter (`docker exec ... sh -c`) is not one of them.
exporter_pids() {
    for cmdline in /proc/[0-9]*/cmdline; do
        args=$(tr '\0' ' ' <"$cmdline" 2>/dev/null) || continue
        case "$args" in
            "sh "*" metrics-run $own_dir " | "perl $exporter "*) pid=${cmdline#/proc/}; echo "${pid%/cmdline}" ;;
        esac
    done
}

start_exporter() {
    [ -f "$exporter" ] && [ -f "$exporter_args" ] || return 0
    # shellcheck disable=SC2046 # one pid per word
    kill $(exporter_pids) 2>/dev/null || true
    sh "$0" metrics-run "$own_dir" </dev/null >/dev/null 2>>"$exporter_log" &
}

cmd_metrics() {
    udp=${1-}
    http=${2-}
    buckets=${3-}
    case "$udp:$http" in
        *[!0-9:]* | :* | *:) refuse "metrics needs two port numbers, got '$udp' '$http'" ;;
    esac
    case "$buckets" in
        "" | *[!0-9.,]*) refuse "metrics needs bucket bounds like 0.1,1,10, got '$buckets'" ;;
    esac
    [ -f "$exporter" ] || refuse "no exporter at $exporter"
    command -v perl >/dev/null ||
        refuse "no perl in this router image: the metrics exporter needs it (the official nginx image has it)"
    printf '%s %s %s\n' "$udp" "$http" "$buckets" >"$exporter_args"
    start_exporter
    echo "metrics exporter started (udp $udp, http $http)"
}

# The supervisor: restarts the exporter a second after it stops, for as long as nginx runs.
cmd_metrics_run() {
    read -r udp http buckets <"$exporter_args"
    while kill -0 "$master_pid" 2>/dev/null; do
        perl "$exporter" "$udp" "$http" "$state_dir" "$buckets" "$master_pid" || true
        sleep 1
    done
}

cmd_boot() {
    mkdir -p "$state_dir"
    # exec below keeps this pid: it is nginx's master.
    master_pid=$$
    export BLUEGREEN_MASTER_PID=$$
    start_exporter
    if [ ! -f "$config" ] && [ -f "$last_good" ]; then
        cp "$last_good" "$config"
        echo "bluegreen-router: restored missing config from last-good copy" >&2
    fi
    if ! nginx_test >/dev/null; then
        quarantine=$own_dir/quarantine
        mkdir -p "$quarantine"
        for file in "$conf_dir"/*.conf; do
            if [ -f "$file" ] && [ "$file" != "$config" ]; then
                mv -f "$file" "$quarantine/"
                echo "bluegreen-router: quarantined $file (nginx -t failed)" >&2
            fi
        done
        if ! nginx_test >/dev/null && [ -f "$last_good" ]; then
            cp "$last_good" "$config"
            echo "bluegreen-router: restored last-good config" >&2
        fi
        if ! nginx_test >/dev/null && [ -f "$config" ]; then
            mv -f "$config" "$quarantine/"
            echo "bluegreen-router: quarantined $config; serving nothing until the next apply" >&2
        fi
    fi
    # shellcheck disable=SC2086
    exec $nginx_cmd -g 'daemon off;'
}

command=${1-}
[ $# -gt 0 ] && shift
case "$command" in
    switch) cmd_switch "$@" ;;
    maintenance) cmd_maintenance "$@" ;;
    canary) cmd_canary "$@" ;;
    status) cmd_status ;;
    apply) cmd_apply ;;
    boot) cmd_boot ;;
    metrics) cmd_metrics "$@" ;;
    metrics-run) cmd_metrics_run ;;
    *) refuse "unknown command '$command' (switch|maintenance|canary|status|apply|boot|metrics)" ;;
esac
