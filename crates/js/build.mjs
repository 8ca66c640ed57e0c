// Builds the native addon (chaperone.<platform>.node) from this crate with the Rust toolchain,
// through @napi-rs/cli: what `npm install ./crates/js` runs. The addon is the Rust SDK
// (crates/sdk) itself; napi-rs also writes native.js (the loader) and native.d.ts (the types).
// CHAPERONE_JS_PROFILE=dev builds the debug profile (reusing a workspace `cargo build`);
// users get release. CARGO_TARGET_DIR is honoured, as by cargo.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** @napi-rs/cli, installed here from the committed lock file when missing: `npm install
 * ./crates/js` in another project links this folder without installing its dependencies. */
function napiCli() {
  try {
    return require.resolve('@napi-rs/cli/package.json');
  } catch {
    console.error('@chaperone/sdk: installing its pinned build tool (@napi-rs/cli) in ' +
      `${here}/node_modules from package-lock.json`);
    const npm = process.env.npm_execpath;
    const [command, prefix] = npm ? [process.execPath, [npm]] : ['npm', []];
    const installed = spawnSync(command, [...prefix, 'ci', '--ignore-scripts', '--no-audit',
      '--no-fund'], { cwd: here, stdio: 'inherit' });
    if (installed.status !== 0) process.exit(installed.status ?? 1);
    return createRequire(join(here, 'package.json')).resolve('@napi-rs/cli/package.json');
  }
}

const cliPackage = napiCli();
const { bin } = require(cliPackage);
const cli = join(dirname(cliPackage), typeof bin === 'string' ? bin : bin.napi);

const profile = process.env.CHAPERONE_JS_PROFILE === 'dev' ? 'dev' : 'release';
const args = [cli, 'build', '--platform', '--manifest-path', join(here, 'Cargo.toml'),
  '--output-dir', here, '--js', 'native.js', '--dts', 'native.d.ts'];
if (profile === 'release') args.push('--release');

const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (cargo.status !== 0) {
  console.error('@chaperone/sdk: building it needs the Rust toolchain (cargo), which is missing: ' +
    'install it from https://rustup.rs and run npm install again');
  process.exit(1);
}
console.error(`@chaperone/sdk: building the native addon from ${here} (Rust crate chaperone-js ` +
  `and the Rust SDK it wraps, ${profile} profile, ${cargo.stdout.trim()}); a first build takes ` +
  'a few minutes');
const built = spawnSync(process.execPath, args, { cwd: here, stdio: 'inherit' });
process.exit(built.status ?? 1);
