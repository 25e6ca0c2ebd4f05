#!/usr/bin/env bash
# gen-pb-vectors.sh - regenerate the protobuf test vectors of the etcd codec with protoc, the
# reference encoder (Debian's protobuf-compiler; tests/tools/deps.sh installs it).
#
#   tests/tools/gen-pb-vectors.sh           rewrite every tests/data/etcd/pb/NAME.hex
#   tests/tools/gen-pb-vectors.sh --check   only compare: exit 1 when a .hex differs
#
# Each tests/data/etcd/pb/NAME.txtpb is one or more sections, each starting with a line
# "# type: MESSAGE" (a message of etcd-subset.proto) followed by that message in protobuf text
# format. Each section is encoded with `protoc --encode`; NAME.hex is the concatenation of the
# encodings (protobuf merges concatenated messages, so a second section can put fields a
# decoder must skip in front of, or after, the fields it reads), as hex, 64 digits a line.
# The first section's bytes are decoded back with `protoc --decode` as a check of the .proto.
# tests/unit/test-etcd_pb.c reads the .hex files: the unit tests never need protoc.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 2
dir=tests/data/etcd/pb
proto=etcd-subset.proto
check=0
[ "${1:-}" = --check ] && check=1
command -v protoc > /dev/null || {
  echo "gen-pb-vectors: protoc missing (apt-get install protobuf-compiler)" >&2
  exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
differ=0
for src in "$dir"/*.txtpb; do
  name=$(basename "$src" .txtpb)
  # split into sections: tmp/NAME.N.type and tmp/NAME.N.txt
  awk -v out="$tmp/$name" '
    /^# type: / { n++; print $3 > (out "." n ".type"); printf "" > (out "." n ".txt"); next }
    n { print > (out "." n ".txt") }
    END { if (!n) exit 1 }' "$src" || {
    echo "gen-pb-vectors: $src has no '# type: MESSAGE' line" >&2
    exit 1
  }
  : > "$tmp/$name.bin"
  i=1
  while [ -f "$tmp/$name.$i.type" ]; do
    type=$(cat "$tmp/$name.$i.type")
    protoc -I"$dir" --encode="hpsubset.$type" "$proto" < "$tmp/$name.$i.txt" > "$tmp/$name.$i.bin"
    if [ "$i" -eq 1 ]; then
      protoc -I"$dir" --decode="hpsubset.$type" "$proto" < "$tmp/$name.$i.bin" > /dev/null
    fi
    cat "$tmp/$name.$i.bin" >> "$tmp/$name.bin"
    i=$((i + 1))
  done
  od -An -v -tx1 "$tmp/$name.bin" | tr -d ' \n' | fold -w 64 > "$tmp/$name.hex"
  [ -s "$tmp/$name.hex" ] && echo >> "$tmp/$name.hex"
  if [ $check -eq 1 ]; then
    cmp -s "$tmp/$name.hex" "$dir/$name.hex" || {
      echo "gen-pb-vectors: $dir/$name.hex differs from protoc's encoding of $src"
      differ=1
    }
  else
    cp "$tmp/$name.hex" "$dir/$name.hex"
  fi
done
[ $check -eq 1 ] && [ $differ -eq 0 ] && echo "gen-pb-vectors: every .hex matches protoc"
exit $differ
