# ---- curvebs-tool (tools/curvefsTool.cpp) ----------------------------------------------------
emu_record "$@"
gf_parse "$@"

# UpdateFlagsFromConf: a config file that loads gives mdsAddr unless -mds_addr was given.
if conf_loads "$FLAG_confPath" && [ -z "$GF_SET_mds_addr" ]; then
    if from_conf=$(conf_get "$FLAG_confPath" mdsAddr); then
        FLAG_mds_addr=$from_conf
    fi
fi
addresses=$(split_commas "$FLAG_mds_addr")
if [ -z "$addresses" ]; then
    log_error "no avaliable mds address."
    log_error "curvefsTool init error."
    exit 255
fi
for address in $addresses; do
    if ! is_ipv4_endpoint "$address"; then
        log_error "Invalid sub mds ip:port provided: $address"
        log_error "curvefsTool init error."
        exit 255
    fi
done

case $FLAG_op in
    create_physicalpool | create_logicalpool)
        if [ ! -f "$FLAG_cluster_map" ] || [ ! -r "$FLAG_cluster_map" ]; then
            log_error "open cluster map file : $FLAG_cluster_map fail."
            log_error "exec fail, ret = -1"
            exit 255
        fi
        exit 0
        ;;
    set_chunkserver | set_logicalpool)
        printf 'curve-image-emulation: curvebs-tool -op=%s is not emulated\n' "$FLAG_op" >&2
        exit 255
        ;;
    *)
        log_error "undefined op."
        exit 255
        ;;
esac
