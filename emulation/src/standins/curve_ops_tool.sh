# ---- curve_ops_tool (src/tools/curve_tool_main.cpp) ------------------------------------------
emu_record "$@"
gf_parse "$@"

COMMANDS='space status chunkserver-status mds-status client-status client-list etcd-status
snapshot-clone-status copysets-status chunkserver-list server-list logical-pool-list
cluster-status get list seginfo delete clean-recycle create extend chunk-location
check-consistency remove-peer transfer-leader reset-peer do-snapshot do-snapshot-all
check-chunkserver check-copyset check-server check-operator list-may-broken-vol
rapid-leader-schedule'

usage() {
    echo "Usage: curve_ops_tool [Command] [OPTIONS...]"
    echo "COMMANDS: $COMMANDS" | tr '\n' ' '
    echo
}

command=$GF_FIRST_ARG
if [ -z "$command" ]; then
    usage
    exit 255
fi
if [ "$command" = version ]; then
    echo "$EMU_VERSION"
    exit 0
fi

conf=$FLAG_confPath
if ! conf_loads "$conf"; then
    log_error "Open config file '$conf' failed"
    exit 255
fi
if ! conf_get "$conf" rootUserName > /dev/null; then
    echo "Missing rootUserName in '$conf'" >&2
    exit 255
fi
if ! conf_get "$conf" rootUserPassword > /dev/null; then
    echo "Mising rootUserPassword in '$conf'" >&2
    exit 255
fi
if [ -z "$GF_SET_mdsAddr" ] && from_conf=$(conf_get "$conf" mdsAddr); then
    FLAG_mdsAddr=$from_conf
fi

known=
for c in $COMMANDS; do [ "$c" = "$command" ] && known=1; done
if [ -z "$known" ]; then
    usage
    exit 255
fi

addresses=$(split_commas "$FLAG_mdsAddr")
if [ -z "$addresses" ]; then
    echo "Split mds address fail!"
    exit 255
fi
for address in $addresses; do
    if ! is_endpoint_or_host_port "$address"; then
        log_error "Invalid address=\`$address'"
        echo "Init channel to all mds fail!"
        echo "Init mdsClient failed!"
        exit 255
    fi
done

case $command in
    chunkserver-status)
        counts=$(cat /emulation/chunkservers 2>/dev/null || echo '0 0')
        total=${counts% *}
        online=${counts#* }
        echo "ChunkServer status:"
        echo "version: $EMU_VERSION"
        echo "chunkserver: total num = $total, online = $online, offline = $((total - online))(recoveringout = 0, chunkserverlist: [])"
        exit 0
        ;;
    *)
        printf 'curve-image-emulation: curve_ops_tool %s is not emulated; exiting 0\n' "$command" >&2
        exit 0
        ;;
esac
