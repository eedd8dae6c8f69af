# snapshot_sha256_mismatch FILE prints nothing when FILE ends with the SHA-256 of the database
# before it, as etcd's snapshot stream does (etcd maintenance Snapshot appends it; etcdctl
# snapshot restore checks it the same way), else what is wrong. `etcdctl snapshot status`
# hashes the keys only, so a changed free page passes it; this catches any changed byte.
# Shared by the backup Job (etcd-backup.sh) and the restore's verification (etcd_restore.rs).
snapshot_sha256_mismatch() {
  sha_size=$(wc -c < "$1")
  if [ $((sha_size % 512)) -ne 32 ]; then
    echo "$sha_size bytes, not a database and its SHA-256"
    return
  fi
  sha_expected=$(tail -c 32 "$1" | od -An -v -tx1 | tr -d ' \n')
  sha_actual=$(head -c $((sha_size - 32)) "$1" | sha256sum | cut -d' ' -f1)
  [ "$sha_expected" = "$sha_actual" ] || echo "its SHA-256 is $sha_actual, the stream said $sha_expected"
}
