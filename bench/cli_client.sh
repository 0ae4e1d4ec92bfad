#!/bin/sh
# cli_client.sh: alternative (e) of `make bench`: the workload with the
# command-line tools, new processes for every request: date for the
# timestamp, openssl for SHA-256, HMAC-SHA256 and Base64, curl for HTTP
# (a new connection each time) and jq to parse and check the answer.
#
#   cli_client.sh BASE_URL get|post COUNT TAG
#
# Credentials come from ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET. The
# HMAC secret goes to openssl on its command line (openssl dgst -hmac has no
# other way), where other local users can see it: use a throwaway secret, as
# `make bench` does. Prints "ok requests=N seconds=S" or "fail WHY".
set -eu

base_url=$1 workload=$2 count=$3 tag=$4
path=/api/partner/v1/customer
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

b64_sha256() {
    openssl dgst -sha256 -binary | openssl base64 -A
}

one_request() {
    i=$1
    if [ "$workload" = get ]; then
        method=GET url="$base_url$path?page=0&size=20" body=""
        check='(.content | length) == 20 and all(.content[]; (.consumerId | type) == "number"
            and (.consumerName | type) == "string" and (.consumerEmail | type) == "string")
            and .page == 0 and .size == 20 and (.hasNext | type) == "boolean"'
    else
        method=POST url="$base_url$path"
        body="{\"fullName\":\"Bench Consumer\",\"email\":\"$tag-$i@bench.example\",\"currency\":\"USD\",\"initialFunds\":1}"
        check='.success == true and (.data.id | type) == "number"
            and (.data.walletId | type) == "string" and .data.currency == "USD"'
    fi
    ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    body_hash=$(printf '%s' "$body" | b64_sha256)
    signature=$(printf '%s\n%s\n%s\n%s' "$method" "$ts" "$ORBT_CLIENT_ID" "$body_hash" \
        | openssl dgst -sha256 -hmac "$ORBT_SECRET" -binary | openssl base64 -A)
    set -- -sS --max-time 10 -o "$dir/answer" -w '%{http_code}' -X "$method" \
        -H "x-api-key: $ORBT_API_KEY" -H "x-client-id: $ORBT_CLIENT_ID" -H "x-timestamp: $ts" \
        -H "x-body-hash: $body_hash" -H "x-signature: $signature" -H "Accept: application/json"
    if [ "$method" = POST ]; then
        set -- "$@" -H "Content-Type: application/json" --data-binary "$body"
    fi
    status=$(curl "$@" "$url") || { echo "fail curl could not send $method"; exit 1; }
    case $status in
        2??) ;;
        *) echo "fail $method answered $status: $(head -c 200 "$dir/answer")"; exit 1 ;;
    esac
    jq -e "$check" "$dir/answer" >/dev/null || { echo "fail the $method answer did not check out"; exit 1; }
}

one_request 0
started=$(date +%s%N)
i=1
while [ "$i" -le "$count" ]; do
    one_request "$i"
    i=$((i + 1))
done
finished=$(date +%s%N)
awk -v n="$count" -v ns="$((finished - started))" 'BEGIN { printf "ok requests=%d seconds=%.6f\n", n, ns / 1e9 }'
