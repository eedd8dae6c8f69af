# ---- /entrypoint.sh (docker/entrypoint.sh) ---------------------------------------------------
emu_record "$@"

role=
args=
parsed=$(getopt -o ra --long role:,args:,help -n "$0" -- "$@") || exit 1
eval set -- "$parsed"
while true; do
    case $1 in
        -r | --role) role=$2; shift 2 ;;
        -a | --args) args=$2; shift 2 ;;
        -h) exit 1 ;;
        --) shift; break ;;
        *) exit 1 ;;
    esac
done

prefix=/curvebs/$role
conf=$prefix/conf/$role.conf
case $role in
    etcd) binary=$prefix/sbin/etcd; start_args="--config-file $conf" ;;
    mds) binary=$prefix/sbin/curvebs-mds; start_args="--confPath $conf" ;;
    chunkserver) binary=$prefix/sbin/curvebs-chunkserver; start_args="--conf=$conf" ;;
    snapshotclone) binary=$prefix/sbin/curvebs-snapshotclone; start_args="--conf=$conf" ;;
    nebd) binary=$prefix/sbin/nebd-server; start_args="-confPath=$prefix/conf/nebd-server.conf -log_dir=$prefix/logs" ;;
    *) echo "Usage: entrypoint.sh --role=ROLE [--args=ARGS]" >&2; exit 1 ;;
esac
[ -n "$args" ] && start_args=$args
chmod 700 "$prefix/data"
[ "$role" = etcd ] && mkdir -p "$prefix/data/wal"

# The real entrypoint ends with `exec $binary $start_args` (word splitting, no quotes).
printf 'curve-image-emulation: /entrypoint.sh would exec: %s %s (Curve daemons are not emulated)\n' \
    "$binary" "$start_args" >&2
exit 0
