#!/bin/sh
# Builds one pod's Curve config dir as curveadm does: each file starts from the image's own
# default (/curvebs/conf/<file>), the operator's keys replace the image's values key by key (so
# every key the operator does not set keeps the default of that image version), and the
# placeholders are filled in: ${prefix} (curveadm's name for /curvebs/<role>), and ${POD_IP},
# ${POD_NAME}, ${CURVE_PORT}, ${CURVE_ROOT_PASSWORD}, ${CURVE_ETCD_INITIAL_CLUSTER} and
# ${CURVE_ETCD_INITIAL_CLUSTER_STATE} from the container's environment.
# A file that still holds a placeholder is an error: a Curve daemon would read it literally.
# Runs in the image (dash and mawk): POSIX sh and awk only; values are replaced literally.
# usage: merge-config.sh DEFAULTS_DIR OUT_DIR PREFIX FILE:DELIMITER...
set -eu
defaults="$1"; out="$2"; prefix="$3"; shift 3
overrides=/curve-operator/config
for spec in "$@"; do
  file="${spec%%:*}"; delim="${spec#*:}"
  if [ ! -f "$defaults/$file" ]; then
    echo "merge-config: the image has no $defaults/$file (is spec.image a CurveBS image?)" >&2
    exit 1
  fi
  custom="$overrides/$file"
  [ -f "$custom" ] || custom=/dev/null
  PREFIX="$prefix" awk -v d="$delim" -v file="$file" '
    function key(line,  i) { i = index(line, d); return i ? substr(line, 1, i - 1) : line }
    function literal(text, from, to,  i, done) {
      done = ""
      while ((i = index(text, from)) > 0) { done = done substr(text, 1, i - 1) to; text = substr(text, i + length(from)) }
      return done text
    }
    function fill(line,  names, n, i) {
      line = literal(line, "${prefix}", ENVIRON["PREFIX"])
      n = split("POD_IP POD_NAME CURVE_PORT CURVE_ROOT_PASSWORD CURVE_ETCD_INITIAL_CLUSTER CURVE_ETCD_INITIAL_CLUSTER_STATE", names, " ")
      for (i = 1; i <= n; i++) if (names[i] in ENVIRON) line = literal(line, "${" names[i] "}", ENVIRON[names[i]])
      return line
    }
    function emit(line) {
      line = fill(line)
      if (line !~ /^[ \t]*#/ && index(line, "${") > 0) { print "merge-config: " file ": " key(line) " still holds a placeholder" > "/dev/stderr"; failed = 1 }
      print line
    }
    FILENAME == ARGV[1] { if ($0 !~ /^[ \t]*(#|$)/) { k = key($0); val[k] = $0; order[++n] = k }; next }
    { k = key($0); if (k in val) { if (!(k in done)) { emit(val[k]); done[k] = 1 }; next }; emit($0) }
    END {
      for (j = 1; j <= n; j++) if (!(order[j] in done)) emit(val[order[j]])
      exit failed
    }
  ' "$custom" "$defaults/$file" > "$out/$file.new"
  mv "$out/$file.new" "$out/$file"
done
