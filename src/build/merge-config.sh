#!/bin/sh
# Builds a Curve config dir for this pod: the image's own defaults, overridden key by key by the
# operator's files (so every key the operator does not set keeps the image default), with
# ${POD_IP} and ${POD_NAME} filled in from the downward API (and ${CURVE_PORT}, set on
# ChunkServers, whose port differs per disk slot).
# usage: merge-config.sh IMAGE_CONF_DIR OUT_DIR FILE:DELIMITER...
set -eu
src="$1"; out="$2"; shift 2
if [ -d "$src" ]; then cp -a "$src/." "$out/"; fi
for spec in "$@"; do
  file="${spec%%:*}"; delim="${spec#*:}"
  base="$out/$file"
  [ -f "$base" ] || : > "$base"
  awk -v d="$delim" '
    function key(line,  i) { i = index(line, d); return i ? substr(line, 1, i - 1) : line }
    NR == FNR { if ($0 !~ /^[ \t]*(#|$)/) { k = key($0); val[k] = $0; order[++n] = k }; next }
    { k = key($0); if (k in val) { if (!(k in done)) { print val[k]; done[k] = 1 }; next }; print }
    END { for (i = 1; i <= n; i++) if (!(order[i] in done)) print val[order[i]] }
  ' "/curve-operator/config/$file" "$base" > "$base.new"
  sed -e "s|\${POD_IP}|$POD_IP|g" -e "s|\${POD_NAME}|$POD_NAME|g" \
    -e "s|\${CURVE_PORT}|${CURVE_PORT:-}|g" "$base.new" > "$base"
  rm -f "$base.new"
done
