# ---- curve_format (src/tools/curve_format_main.cpp) -----------------------------------------
emu_record "$@"
gf_parse "$@"

# Ext4FileSystemImpl::Mkdir creates every missing parent, like mkdir -p.
if ! mkdir -p -- "$FLAG_filePoolDir" 2>/dev/null; then
    log_error "mkdir failed!, $FLAG_filePoolDir"
    exit 255
fi
if ! existing=$(ls -1 -- "$FLAG_filePoolDir" 2>/dev/null); then
    log_error "list dir failed!, $FLAG_filePoolDir"
    exit 255
fi
# New chunk files are numbered after the highest existing one (atoi of each name).
highest=$(printf '%s\n' "$existing" | awk '{ n = $0 + 0; if (n > max) max = n } END { print max + 0 }')

if ! blocks=$(stat -f -c '%a %b' -- "$FLAG_fileSystemPath" 2>/dev/null); then
    log_error "get disk usage info failed!"
    exit 255
fi
available=${blocks% *}
total=${blocks#* }
if [ "$total" -eq 0 ]; then
    log_error "get disk usage info failed!"
    exit 255
fi
freepercent=$((available * 100 / total))

# The real tool's trap: too little free space is reported, but the exit status is still 0 and
# no meta file is written.
if [ "$freepercent" -lt "$FLAG_allocatePercent" ] && [ "$FLAG_allocateByPercent" = true ]; then
    log_error "disk free space not enough."
    exit 0
fi

block_size=$(stat -f -c '%S' -- "$FLAG_fileSystemPath")
chunk_bytes=$((FLAG_fileSize + FLAG_metaPagSize))
if [ "$FLAG_allocateByPercent" = true ]; then
    wanted=$((FLAG_allocatePercent * total * block_size / 100 / chunk_bytes))
else
    wanted=$FLAG_preAllocateNum
fi
# Two threads each allocate half: an odd count loses one file, as in the real tool.
wanted=$((wanted / 2 * 2))

# Every chunk file, of its real size, allocated (AllocateFiles: Fallocate of fileSize +
# metaPagSize; the real tool then writes zeros, which takes no more space): the volume's free
# share after a format is what Curve would leave, so a restart or a grown volume sees the
# truth. A file that cannot be allocated (no space left) fails the tool, as in the real one.
i=1
while [ "$i" -le "$wanted" ]; do
    if ! fallocate -l "$chunk_bytes" -- "$FLAG_filePoolDir/$((highest + i))" 2>/dev/null; then
        log_error "Fallocate failed, $FLAG_filePoolDir/$((highest + i))"
        log_error "allocate got something wrong, please check."
        exit 255
    fi
    i=$((i + 1))
done

json_escape() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'
}
meta=$(printf '{"chunkSize":%s,"metaPageSize":%s,"chunkfilepool_path":"%s","crc":0,"emulated":true,"chunks":%s}' \
    "$FLAG_fileSize" "$FLAG_metaPagSize" "$(json_escape "$FLAG_filePoolDir")" "$wanted")
if ! printf '%s' "$meta" > "$FLAG_filePoolMetaPath" 2>/dev/null; then
    log_error "persist chunkfile pool meta info failed!"
    exit 255
fi
exit 0
