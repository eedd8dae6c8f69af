# One etcd snapshot (spec.etcd.backup), run by the backup Job on the Curve image (debian:9: dash,
# coreutils, sed; etcdctl v3.4.10 at /curvebs/etcd/sbin/etcdctl).
#   CURVE_BACKUP_ENDPOINT  the chosen member's client URL
#   CURVE_BACKUP_MEMBER    its member name
#   CURVE_BACKUP_KEEP      how many verified snapshots to keep
#   CURVE_BACKUP_RESULT    optional: a file the success line is also written to, for the Job's
#                          upload step (spec.etcd.backup.s3), which runs after this one
# Tests and the e2e kubelet point CURVE_ETCDCTL, CURVE_BACKUP_DIR and CURVE_TERMINATION_LOG
# elsewhere. Layout: $dir/<name>.db, and <name>.json written only once the .db verified;
# <name> = etcd-<YYYYMMDD>T<hhmmss>Z. The result is one JSON line in the termination message.
set -u
etcdctl=${CURVE_ETCDCTL:-/curvebs/etcd/sbin/etcdctl}
dir=${CURVE_BACKUP_DIR:-/backup}/snapshots
log=${CURVE_TERMINATION_LOG:-/dev/termination-log}
endpoint=$CURVE_BACKUP_ENDPOINT
member=$CURVE_BACKUP_MEMBER
keep=$CURVE_BACKUP_KEEP

# The reason on one line, JSON-escaped and cut to fit the 4096-byte termination message.
fail() {
  reason=$(printf '%s' "$1" | tr -c '[:print:]' ' ' | sed 's/\\/\\\\/g; s/"/\\"/g' | cut -c1-3000)
  printf '{"result":"failure","member":"%s","reason":"%s"}\n' "$member" "$reason" > "$log"
  printf '%s\n' "$1" >&2
  exit 1
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
name=etcd-$stamp
taken=$(printf '%s' "$stamp" | sed 's/^\(....\)\(..\)\(..\)T\(..\)\(..\)\(..\)Z$/\1-\2-\3T\4:\5:\6Z/')
part=$dir/.$name.db.part
mkdir -p "$dir" || fail "cannot create $dir on the backup volume"
# Leftovers of a run that was killed.
rm -f "$dir"/.*.part

# etcdctl's own words, without its JSON log lines.
said() { printf '%s\n' "$1" | grep -v '^{"level"' | tail -n 3; }
# snapshot save waits for its whole command timeout when the member does not answer: ask first.
out=$("$etcdctl" --endpoints "$endpoint" --dial-timeout 10s --command-timeout 20s endpoint status 2>&1) \
  || fail "etcd member $member ($endpoint) does not answer: $(said "$out")"
out=$("$etcdctl" --endpoints "$endpoint" --dial-timeout 10s --command-timeout 3000s snapshot save "$part" 2>&1) \
  || { rm -f "$part"; fail "etcdctl snapshot save from $member ($endpoint) failed: $(said "$out")"; }

# Integrity: every byte, by the SHA-256 the stream ends with (snapshot-sha256.sh).
size=$(wc -c < "$part")
wrong=$(snapshot_sha256_mismatch "$part")
if [ -n "$wrong" ]; then
  rm -f "$part"
  fail "verification of the snapshot from $member failed: $wrong"
fi
# Readable as etcd's database: its hash, revision and key count.
status=$("$etcdctl" snapshot status -w json "$part" 2>&1) \
  || { rm -f "$part"; fail "verification of the snapshot from $member failed: etcdctl snapshot status: $(said "$status")"; }
field() { printf '%s' "$status" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
revision=$(field revision)
keys=$(field totalKey)
hash=$(field hash)
if [ -z "$revision" ] || [ -z "$keys" ] || [ -z "$hash" ] || [ "$revision" -lt 1 ]; then
  rm -f "$part"
  fail "verification of the snapshot from $member failed: etcdctl snapshot status said $status"
fi

mv "$part" "$dir/$name.db" || fail "cannot rename $part to $name.db"
json="$(printf '%s' "$status" | sed 's/}[[:space:]]*$//'),\"member\":\"$member\",\"takenAt\":\"$taken\"}"
printf '%s\n' "$json" > "$dir/.$name.json.part" && mv "$dir/.$name.json.part" "$dir/$name.json" \
  || fail "cannot write $name.json"

# Only now, with a newer snapshot verified: the oldest verified ones beyond keep (never this
# one), then every database without its .json (unverified, never used).
pruned=0
for old in $(ls "$dir" | grep -E '^etcd-[0-9]{8}T[0-9]{6}Z\.json$' | sort -r | tail -n +$((keep + 1))); do
  old=${old%.json}
  [ "$old" = "$name" ] && continue
  rm -f "$dir/$old.json" "$dir/$old.db"
  pruned=$((pruned + 1))
done
for db in "$dir"/etcd-*.db; do
  [ -e "$db" ] && [ ! -e "${db%.db}.json" ] && rm -f "$db"
done

printf '{"result":"success","name":"%s","takenAt":"%s","member":"%s","size":%s,"revision":%s,"totalKey":%s,"hash":%s,"pruned":%s}\n' \
  "$name" "$taken" "$member" "$size" "$revision" "$keys" "$hash" "$pruned" > "$log"
if [ -n "${CURVE_BACKUP_RESULT:-}" ]; then
  cp "$log" "$CURVE_BACKUP_RESULT" || fail "cannot write $CURVE_BACKUP_RESULT for the upload step"
fi
echo "snapshot $name from $member: revision $revision, $keys keys, $size bytes; $pruned pruned"
