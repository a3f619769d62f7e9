#!/bin/sh
# Writes one random token per name into TOKEN_DIR when it is missing; existing tokens are
# kept. docker-compose.yml runs it as a one-shot service before statewriter starts:
#
#   TOKEN_DIR=/tokens TOKEN_OWNER=10001:10001 sh compose-tokens.sh platform-admin elastic-pipeline
#
# Each token is 64 hex digits from /dev/urandom, in a file readable by its owner only (chown'd
# to TOKEN_OWNER, the service's uid:gid, when given). Token values are never printed.
set -eu
dir="${TOKEN_DIR:?set TOKEN_DIR}"
[ "$#" -gt 0 ] || { echo "usage: TOKEN_DIR=DIR $0 NAME..." >&2; exit 2; }
umask 077
mkdir -p "$dir"
for name in "$@"; do
  case "$name" in
    ''|*/*|.*) echo "compose-tokens: bad token name '$name'" >&2; exit 2 ;;
  esac
  file="$dir/$name"
  if [ -s "$file" ]; then
    echo "compose-tokens: kept    $name"
    continue
  fi
  token="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  [ "${#token}" -eq 64 ] || { echo "compose-tokens: could not read /dev/urandom" >&2; exit 1; }
  printf '%s\n' "$token" > "$file.tmp"
  if [ -n "${TOKEN_OWNER:-}" ]; then chown "$TOKEN_OWNER" "$file.tmp"; fi
  chmod 0400 "$file.tmp"
  mv -f "$file.tmp" "$file"
  echo "compose-tokens: created $name"
done
echo "compose-tokens: the tokens are files in /config/tokens of the statewriter container; read one with"
echo "  docker compose exec statewriter cat /config/tokens/$1"
