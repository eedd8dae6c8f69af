#!/bin/sh
# Stand-in for Curve's @TOOL@, written by curve-image-emulation for tests: it is NOT Curve code.
# It records how it was called under /emulation/record/, parses its flags the way gflags does
# and imitates the few behaviours of the real tool that a deployment depends on.
IFS=' 	
'
EMU_TOOL='@TOOL@'
EMU_VERSION='@VERSION@'
# Where the real tool's log lines come from.
EMU_SOURCE='@SOURCE@'
# "name:type" of every flag the real binary defines (its own, gflags' and glog's).
GF_KNOWN='@KNOWN_FLAGS@'
# 1: an unknown flag is an error, as in gflags. 0: warn only (the real binary links libraries
# whose flags the stand-in does not list).
GF_REFUSE_UNKNOWN=@REFUSE_UNKNOWN@
@FLAG_DEFAULTS@

TAB='	'

# Writes argv (one per line), then "--- env" and the environment to /emulation/record/<tool>.<n>.
emu_record() {
    _emu_dir=/emulation/record
    mkdir -p "$_emu_dir" 2>/dev/null
    _emu_n=1
    # noclobber makes the creation exclusive, so concurrent calls never share a number.
    while ! (set -C; : > "$_emu_dir/$EMU_TOOL.$_emu_n") 2>/dev/null; do
        _emu_n=$((_emu_n + 1))
        [ "$_emu_n" -gt 100000 ] && return 0
    done
    {
        printf '%s\n' "$0"
        for _emu_a in "$@"; do printf '%s\n' "$_emu_a"; done
        printf '%s\n' '--- env'
        env
    } >> "$_emu_dir/$EMU_TOOL.$_emu_n"
}

# glog's LOG(ERROR) line; errors also go to stderr with glog's default stderrthreshold.
log_error() {
    printf 'E%s %s %s] %s\n' "$(date '+%m%d %H:%M:%S.%6N')" "$$" "$EMU_SOURCE" "$1" >&2
}

# A feature of the real tool that the stand-in does not imitate: fail loudly, never guess.
not_emulated() {
    printf 'curve-image-emulation: %s: %s is not emulated\n' "$EMU_TOOL" "$1" >&2
    exit 2
}

# ---- gflags ---------------------------------------------------------------------------------

# Sets GF_TYPE to the type of flag $1; fails when the binary defines no such flag.
gf_type_of() {
    GF_TYPE=
    for _gf_f in $GF_KNOWN; do
        if [ "${_gf_f%%:*}" = "$1" ]; then
            GF_TYPE=${_gf_f#*:}
            return 0
        fi
    done
    return 1
}

# gflags keeps one message per flag name (a std::map): the last one set wins, "" clears it.
gf_error() {
    GF_ERRORS="$GF_ERRORS$1$TAB$2
"
}

gf_undefined() {
    GF_UNDEFINED="$GF_UNDEFINED$1
"
}

gf_is_undefined() {
    case "
$GF_UNDEFINED" in
        *"
$1
"*) return 0 ;;
    esac
    return 1
}

gf_positional() {
    if [ -z "$GF_HAVE_FIRST_ARG" ]; then
        GF_FIRST_ARG=$1
        GF_HAVE_FIRST_ARG=1
    fi
}

# Prints the normalized value of $2 for type $1 ("true"/"false" for bool), fails if illegal.
gf_parse_value() {
    case $1 in
        bool)
            case $(printf '%s' "$2" | tr 'A-Z' 'a-z') in
                true | t | yes | y | 1) echo true ;;
                false | f | no | n | 0) echo false ;;
                *) return 1 ;;
            esac
            ;;
        string) printf '%s' "$2" ;;
        int32 | int64 | uint32 | uint64) gf_parse_number "$1" "$2" ;;
        double)
            printf '%s' "$2" | grep -Eq '^ *[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$' || return 1
            printf '%s' "$2"
            ;;
        *) return 1 ;;
    esac
}

# strtoXX as gflags calls it: base 10, or 16 after 0x; the whole text must be used.
gf_parse_number() {
    _gf_v=$2
    while [ "${_gf_v# }" != "$_gf_v" ]; do _gf_v=${_gf_v# }; done
    _gf_sign=
    case $_gf_v in
        -*) _gf_sign=-; _gf_v=${_gf_v#-} ;;
        +*) _gf_v=${_gf_v#+} ;;
    esac
    case $1 in uint*) [ -n "$_gf_sign" ] && return 1 ;; esac
    case $_gf_v in
        0[xX]*)
            _gf_v=${_gf_v#0?}
            case $_gf_v in '' | *[!0-9a-fA-F]*) return 1 ;; esac
            [ ${#_gf_v} -gt 15 ] && return 1
            _gf_v=$((0x$_gf_v))
            ;;
        '' | *[!0-9]*) return 1 ;;
        *)
            while [ "${_gf_v#0}" != "$_gf_v" ] && [ ${#_gf_v} -gt 1 ]; do _gf_v=${_gf_v#0}; done
            [ ${#_gf_v} -gt 18 ] && return 1
            ;;
    esac
    case $1 in
        int32) [ "$_gf_v" -le 2147483647 ] || { [ -n "$_gf_sign" ] && [ "$_gf_v" -eq 2147483648 ]; } || return 1 ;;
        uint32) [ "$_gf_v" -le 4294967295 ] || return 1 ;;
    esac
    printf '%s%s' "$_gf_sign" "$_gf_v"
}

gf_set() {
    if ! _gf_norm=$(gf_parse_value "$2" "$3"); then
        gf_error "$1" "ERROR: illegal value '$3' specified for $2 flag '$1'"
        return
    fi
    case $1 in
        flagfile | fromenv | tryfromenv) not_emulated "-$1" ;;
    esac
    eval "FLAG_$1=\$_gf_norm"
    eval "GF_SET_$1=1"
}

# Parses "$@" as gflags' ParseCommandLineFlags does: -name=value, --name=value, -name value,
# boolean -name / -noname; "--" ends the flags; other words are positional. Flags end up in
# FLAG_<name>, GF_SET_<name>=1 marks the ones given; GF_FIRST_ARG is the first positional word.
gf_parse() {
    GF_ERRORS=
    GF_UNDEFINED=
    GF_FIRST_ARG=
    GF_HAVE_FIRST_ARG=
    while [ $# -gt 0 ]; do
        _gf_arg=$1
        shift
        case $_gf_arg in
            -?*) ;;
            *) gf_positional "$_gf_arg"; continue ;;
        esac
        _gf_name=${_gf_arg#-}
        _gf_name=${_gf_name#-}
        if [ -z "$_gf_name" ]; then
            for _gf_rest in "$@"; do gf_positional "$_gf_rest"; done
            break
        fi
        case $_gf_name in
            *=*) _gf_value=${_gf_name#*=}; _gf_name=${_gf_name%%=*}; _gf_has_value=1 ;;
            *) _gf_value=; _gf_has_value=0 ;;
        esac
        if ! gf_type_of "$_gf_name"; then
            # -noX is -X=false when X is a boolean flag.
            case $_gf_name in
                no*) if gf_type_of "${_gf_name#no}"; then
                        if [ "$GF_TYPE" != bool ]; then
                            gf_undefined "$_gf_name"
                            gf_error "$_gf_name" "ERROR: boolean value ($_gf_name) specified for $GF_TYPE command line flag"
                            continue
                        fi
                        _gf_name=${_gf_name#no}
                        _gf_value=0
                        _gf_has_value=1
                    fi ;;
            esac
        fi
        if [ -z "$GF_TYPE" ]; then
            gf_undefined "$_gf_name"
            if [ "$GF_REFUSE_UNKNOWN" = 1 ]; then
                gf_error "$_gf_name" "ERROR: unknown command line flag '$_gf_name'"
            else
                printf "curve-image-emulation: %s: flag '%s' is unknown to the stand-in (the real tool may refuse it)\n" "$EMU_TOOL" "$_gf_name" >&2
            fi
            continue
        fi
        if [ "$_gf_has_value" = 0 ]; then
            if [ "$GF_TYPE" = bool ]; then
                _gf_value=1
            elif [ $# -gt 0 ]; then
                _gf_value=$1
                shift
            else
                gf_error "$_gf_name" "ERROR: flag '$_gf_arg' is missing its argument"
                break
            fi
        fi
        gf_set "$_gf_name" "$GF_TYPE" "$_gf_value"
    done
    gf_apply_undefok
    gf_report_errors
    if [ "$FLAG_help" = true ] || [ "$FLAG_helpfull" = true ] || [ "$FLAG_helpshort" = true ]; then
        not_emulated "-help"
    fi
}

# -undefok=a,b: unknown flags a, b (or noa, nob) are not errors.
gf_apply_undefok() {
    [ -n "$FLAG_undefok" ] || return 0
    _gf_list=$FLAG_undefok
    while [ -n "$_gf_list" ]; do
        case $_gf_list in
            *,*) _gf_item=${_gf_list%%,*}; _gf_list=${_gf_list#*,} ;;
            *) _gf_item=$_gf_list; _gf_list= ;;
        esac
        if [ -z "$_gf_item" ]; then
            printf 'ERROR: empty flaglist entry\n' >&2
            exit 1
        fi
        case $_gf_item in
            -*) printf 'ERROR: flag "%s" begins with '"'-'"'\n' "$_gf_item" >&2; exit 1 ;;
        esac
        if gf_is_undefined "$_gf_item"; then
            gf_error "$_gf_item" ""
        elif gf_is_undefined "no$_gf_item"; then
            gf_error "no$_gf_item" ""
        fi
    done
}

# Prints the remaining messages in flag-name order and exits 1, as gflags does.
gf_report_errors() {
    [ -n "$GF_ERRORS" ] || return 0
    _gf_messages=$(printf '%s' "$GF_ERRORS" |
        awk -F "$TAB" '{ last[$1] = $0 } END { for (k in last) print last[k] }' |
        LC_ALL=C sort -t "$TAB" -k1,1 | cut -f2- | grep -v '^$')
    if [ -n "$_gf_messages" ]; then
        printf '%s\n' "$_gf_messages" >&2
        exit 1
    fi
}

# ---- Curve's common::Configuration --------------------------------------------------------

# Prints the value of key $2 in config file $1 as Configuration::LoadConfig reads it (every
# space removed, "#..." cut, last occurrence wins); fails if the key is absent.
conf_get() {
    [ -f "$1" ] || return 1
    awk -v want="$2" '
    {
        line = $0
        gsub(/[ \t\r\v\f]/, "", line)
        if (line == "" || substr(line, 1, 1) == "#") next
        d = index(line, "=") - 1
        c = index(line, "#") - 1
        key = (d < 0) ? line : substr(line, 1, d)
        len = c - d - 1
        value = (len < 0) ? substr(line, d + 2) : substr(line, d + 2, len)
        if (key == want) { found = 1; result = value }
    }
    END { if (!found) exit 1; print result }' "$1"
}

# Configuration::LoadConfig fails only when the file cannot be opened.
conf_loads() {
    [ -r "$1" ] && { [ -f "$1" ] || [ -d "$1" ]; }
}

# ---- addresses ------------------------------------------------------------------------------

# butil::str2endpoint: an IPv4 address (inet_pton: four decimal octets, no leading zeros),
# ":" and a port 0..65535. Host names are refused.
is_ipv4_endpoint() {
    _ep_ip=${1%%:*}
    [ "$_ep_ip" != "$1" ] || return 1
    is_port "${1#*:}" || return 1
    printf '%s\n' "$_ep_ip" | grep -Eq '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
}

# brpc's Channel::Init: an IPv4 endpoint or host:port (host names are resolved later).
is_endpoint_or_host_port() {
    is_ipv4_endpoint "$1" && return 0
    _ep_host=${1%:*}
    [ "$_ep_host" != "$1" ] && [ -n "$_ep_host" ] || return 1
    is_port "${1##*:}" || return 1
    printf '%s\n' "$_ep_host" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'
}

is_port() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    [ ${#1} -le 5 ] && [ "$1" -le 65535 ]
}

# Curve's SplitString: the non-empty pieces of $1 between commas, one per line.
split_commas() {
    printf '%s\n' "$1" | tr ',' '\n' | grep -v '^$'
}

