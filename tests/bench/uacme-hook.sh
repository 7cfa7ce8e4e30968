#!/bin/sh
# uacme challenge hook for the ACME benchmark: accepts http-01 only, writing the key
# authorization where http01-responder.py serves it (UACME_WEBROOT).
#   uacme-hook.sh begin|done|failed TYPE IDENT TOKEN KEY_AUTH
method=$1 type=$2 token=$4 auth=$5
[ "$type" = http-01 ] || exit 1
case $token in
*/* | .* | "") exit 1 ;;
esac
case $method in
begin) printf '%s' "$auth" >"$UACME_WEBROOT/$token" ;;
done | failed) rm -f "$UACME_WEBROOT/$token" ;;
*) exit 1 ;;
esac
