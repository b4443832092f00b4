#!/usr/bin/env bash
# Times the README's serve command from a fresh clone with an empty target/: from the command's
# start to the first correct `POST /predict`, with the moments each build step ends. The cargo
# registry is the machine's (downloads are not timed). Usage: scripts/fresh-clone.sh [PORT]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
port="${1:-3077}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
git clone -q "$repo" "$work/spinfer"
cd "$work/spinfer"

echo "serving binary's training crates (cargo tree): $(cargo tree -q -p spinfer -e normal,build \
    | grep -cE '^[^a-z]*(burn|plotters|imageproc) ' || true)"
start=$SECONDS
# The README's command, on its own port.
cargo run --release -p spinfer -- up --build --listen "127.0.0.1:$port" >"$work/up.log" 2>&1 &
server=$!
pixels=$(python3 -c "print(','.join(['0']*784))")
binary="" component="" snapshot=""
until curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"pixels\":[$pixels]}" "http://127.0.0.1:$port/predict"; do
    kill -0 "$server" 2>/dev/null || { tail -20 "$work/up.log"; exit 1; }
    elapsed=$((SECONDS - start))
    [ -z "$binary" ] && grep -q "Running \`target/release/spinfer" "$work/up.log" && binary=$elapsed
    [ -z "$component" ] && grep -q "Finished \`wasm\` profile" "$work/up.log" && component=$elapsed
    [ -z "$snapshot" ] && grep -q "snapshot written" "$work/up.log" && snapshot=$elapsed
    sleep 1
done
echo "native spinfer built: ${binary:-?} s; component built: ${component:-?} s; snapshot: ${snapshot:-?} s"
echo "first answer: $((SECONDS - start)) s"
