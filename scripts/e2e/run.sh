#!/usr/bin/env bash
# Runs the end-to-end tests (test/e2e/*.e2e.ts) against a real VS Code: code-server 4.139.1 on a free
# loopback port, with the packaged linux-x64 VSIX installed, driven by Debian's Chromium through
# playwright-core. Needs scripts/e2e/setup.sh first (`npm run test:e2e` does both, and packages).
# The specs run one after the other in the same code-server, each in a browser and workspace of its
# own: hostFederation (FedEx: Host Federation, joined by two `fedex join` processes of the repository's
# bin/fedex.cjs, run with this shell's node) and simulation (FedEx: Run Local Simulation).
# Usage: scripts/e2e/run.sh [path/to.vsix] [test file…]
# Artifacts (screenshots, code-server and extension-host logs): test-results/e2e/ (FEDEX_E2E_ARTIFACTS).
set -euo pipefail

# shellcheck source=scripts/e2e/paths.sh
source "$(dirname "$0")/paths.sh"
ARTIFACTS="${FEDEX_E2E_ARTIFACTS:-$ROOT/test-results/e2e}"

version="$(node -p "require('$ROOT/package.json').version")"
name="$(node -p "require('$ROOT/package.json').name")"
VSIX="${1:-$ROOT/out/vsix/$name-linux-x64-$version.vsix}"
shift || true
if (($# > 0)); then tests=("$@"); else tests=("$ROOT"/test/e2e/*.e2e.ts); fi

for need in "$NODE_HOME/bin/node" "$CS_ENTRY"; do
  [[ -e "$need" ]] || { echo "e2e: $need is missing; run scripts/e2e/setup.sh" >&2; exit 1; }
done
[[ -f "$VSIX" ]] || { echo "e2e: $VSIX is missing; run npm run package (or node scripts/package.mjs --target linux-x64)" >&2; exit 1; }
CHROMIUM="${FEDEX_E2E_CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "e2e: $CHROMIUM is missing; run scripts/e2e/setup.sh" >&2; exit 1; }

# Everything this run writes lives in one folder: code-server's config, user data, extensions, HOME,
# XDG dirs and TMPDIR, and the workspace the tests open.
mkdir -p "$E2E_DIR/runs"
RUN_DIR="$(mktemp -d "$E2E_DIR/runs/run-XXXXXX")"
mkdir -p "$RUN_DIR"/{user-data/User,extensions,home,xdg-config,xdg-data,xdg-cache,xdg-state,tmp,workspace}
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

cat >"$RUN_DIR/config.yaml" <<'YAML'
auth: none
cert: false
YAML
cat >"$RUN_DIR/user-data/User/settings.json" <<'JSON'
{
  "workbench.startupEditor": "none",
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "chat.disableAIFeatures": true,
  "chat.commandCenter.enabled": false,
  "github.copilot.enable": { "*": false },
  "security.workspace.trust.enabled": false,
  "git.enabled": false,
  "window.restoreWindows": "none",
  "workbench.secondarySideBar.defaultVisibility": "hidden"
}
JSON

# code-server with this run's folders; HOME, XDG dirs and TMPDIR point into the run folder too.
CODE_SERVER=(env HOME="$RUN_DIR/home" XDG_CONFIG_HOME="$RUN_DIR/xdg-config" XDG_DATA_HOME="$RUN_DIR/xdg-data"
  XDG_CACHE_HOME="$RUN_DIR/xdg-cache" XDG_STATE_HOME="$RUN_DIR/xdg-state" TMPDIR="$RUN_DIR/tmp"
  PATH="$NODE_HOME/bin:$PATH"
  "$NODE_HOME/bin/node" "$CS_ENTRY" --config "$RUN_DIR/config.yaml"
  --user-data-dir "$RUN_DIR/user-data" --extensions-dir "$RUN_DIR/extensions")

echo "== e2e: installing $(basename "$VSIX")"
"${CODE_SERVER[@]}" --install-extension "$VSIX" >"$ARTIFACTS/install-extension.log" 2>&1 || {
  cat "$ARTIFACTS/install-extension.log" >&2
  exit 1
}

PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();})")"
CS_PID=""
# code-server runs in its own process group (setsid; its PID is the group's id), so stopping it by
# that PID also ends its server, extension host, file watcher and anything the extension spawned.
stop_code_server() {
  if [[ -n "$CS_PID" ]]; then
    kill -TERM -- "-$CS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$CS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$CS_PID" 2>/dev/null || true
  fi
  # Logs of the editor and the extension host (the FedEx output channel among them) as artifacts.
  if [[ -d "$RUN_DIR/user-data/logs" ]]; then cp -r "$RUN_DIR/user-data/logs" "$ARTIFACTS/vscode-logs" 2>/dev/null || true; fi
  if [[ -z "${FEDEX_E2E_KEEP:-}" ]]; then rm -rf "$RUN_DIR"; fi
}
trap stop_code_server EXIT
trap 'exit 130' INT TERM

echo "== e2e: code-server $CODE_SERVER_VERSION on 127.0.0.1:$PORT (run folder $RUN_DIR)"
setsid "${CODE_SERVER[@]}" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override \
  >"$ARTIFACTS/code-server.log" 2>&1 &
CS_PID=$!
# setsid execs in place (a background job is no group leader), so $! is code-server's own PID and
# its process group's id; check, since stopping relies on it.
sleep 0.2
if [[ "$(ps -o pgid= -p "$CS_PID" | tr -d ' ')" != "$CS_PID" ]]; then
  echo "e2e: code-server (PID $CS_PID) does not lead its own process group; cannot stop it cleanly" >&2
  kill "$CS_PID" 2>/dev/null || true
  exit 1
fi

started=$SECONDS
until node -e "fetch('http://127.0.0.1:$PORT/healthz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"; do
  if ! kill -0 "$CS_PID" 2>/dev/null; then
    echo "e2e: code-server exited before answering /healthz:" >&2
    tail -n 40 "$ARTIFACTS/code-server.log" >&2
    exit 1
  fi
  if ((SECONDS - started > 90)); then
    echo "e2e: code-server did not answer /healthz within 90 s" >&2
    tail -n 40 "$ARTIFACTS/code-server.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "== e2e: code-server healthy after $((SECONDS - started)) s"

echo "== e2e: node --test ${tests[*]#"$ROOT/"}"
cd "$ROOT"
FEDEX_E2E_URL="http://127.0.0.1:$PORT" FEDEX_E2E_WORKSPACE="$RUN_DIR/workspace" \
  FEDEX_E2E_ARTIFACTS="$ARTIFACTS" FEDEX_E2E_CHROMIUM="$CHROMIUM" FEDEX_E2E_BROWSER_DIR="$RUN_DIR/browser" \
  FEDEX_E2E_USER_DATA="$RUN_DIR/user-data" \
  node --import tsx --test --test-concurrency=1 --test-reporter=spec "${tests[@]}"
