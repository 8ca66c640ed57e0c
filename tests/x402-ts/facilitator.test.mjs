// x402's TypeScript facilitator (npm: @x402/core + @x402/evm on viem) verifies and settles the
// payments the Rust SDK makes from AgentWallets, on a `chaperone up` devnet, beside x402-rs's.
//
// A small merchant in this process answers 402 with one x402 v2 requirement (encoded by
// @x402/core), and verifies and settles the payment header it gets back with @x402/evm's
// facilitator (from Anvil's dev account 1, not the deployer that `up` and x402-rs use). The
// example agent (`--x402-url`, the SDK's `X402Client`) pays it: EIP-3009 and Permit2 from the
// devnet's wallet, and EIP-3009 from its counterfactual wallet, whose ERC-6492 signature the
// facilitator simulates through Multicall3's `tryAggregate` before it deploys the wallet. Each
// payment replayed is then refused: the EIP-3009 ones as a used nonce (the facilitator's
// diagnosis reads the token's `authorizationState` through `tryAggregate` too), the Permit2
// one by Permit2's `InvalidNonce()`.
//
//   scripts/test-x402-ts.sh   (checks what it needs, then runs this with `node --test`)
//
// CHAPERONE_BIN names the `chaperone` binary (default target/debug/chaperone; the example
// agent is expected beside it, in examples/).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Imports an npm package of the pinned toolchain, or fails saying how to install it. */
async function load(name) {
  try {
    return await import(name);
  } catch (e) {
    throw new Error(
      `cannot import ${name} (${e.code ?? e.message}): install the pinned npm packages with ` +
        "`make toolchain` (or `npm install --no-audit --no-fund --no-save`) at the repository root",
    );
  }
}

const { x402Facilitator } = await load("@x402/core/facilitator");
const { decodePaymentSignatureHeader, encodePaymentRequiredHeader, encodePaymentResponseHeader } =
  await load("@x402/core/http");
const { toFacilitatorEvmSigner } = await load("@x402/evm");
const { registerExactEvmScheme } = await load("@x402/evm/exact/facilitator");
const viem = await load("viem");
const { mnemonicToAccount } = await load("viem/accounts");

const bin = process.env.CHAPERONE_BIN ?? join(root, "target/debug/chaperone");
const agentBin = join(dirname(bin), "examples/agent");
for (const [path, what] of [
  [bin, "the chaperone binary"],
  [agentBin, "the example agent"],
]) {
  if (!existsSync(path)) {
    throw new Error(
      `${what} is missing at ${path}: build it with ` +
        "`cargo build -p chaperone-cli --bins --examples`",
    );
  }
}

/** Anvil's dev mnemonic: its accounts are funded on every devnet, and public. */
const ANVIL_MNEMONIC = "test test test test test test test test test test test junk";
/** The merchant (Anvil's dev account 9, as in examples/paid_api.rs). */
const PAY_TO = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
/** 0.01 of the 6-decimal demo token. */
const PRICE = 10_000n;
const NONCE_USED = "invalid_exact_evm_nonce_already_used";

const erc20Abi = viem.parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function eip712Domain() view returns " +
    "(bytes1, string, string, uint256, address, bytes32, uint256[])",
]);

/** A port nothing listens on, below the kernel's ephemeral range (see tests/e2e/main.rs). */
async function freePort() {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    const free = await new Promise((done) => {
      const probe = net.createServer();
      probe.once("error", () => done(false));
      probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
    });
    if (free) return port;
  }
  throw new Error("no free port in 20000..32768");
}

/** Runs a program to its end: exit code, stdout, stderr. */
function run(program, args) {
  return new Promise((done, fail) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

const tail = (text, lines = 30) => text.trim().split("\n").slice(-lines).join("\n");

/** `chaperone up` in its own data directory: the process, its devnet.json, its stderr so far. */
async function up(dataDir) {
  const args = ["up", "--json", "--data-dir", dataDir];
  for (const flag of ["--port", "--anvil-port", "--facilitator-port"]) {
    args.push(flag, String(await freePort()));
  }
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const log = { stderr: "" };
  child.stderr.on("data", (d) => (log.stderr += d));
  const info = await new Promise((done, fail) => {
    let buffered = "";
    const timer = setTimeout(
      () => fail(new Error(`chaperone up did not start within 120 s:\n${tail(log.stderr)}`)),
      120_000,
    );
    child.stdout.on("data", (d) => {
      buffered += d;
      const lines = buffered.split("\n");
      buffered = lines.pop();
      for (const line of lines) {
        let value;
        try {
          value = JSON.parse(line);
        } catch {
          continue;
        }
        if (value && typeof value === "object") {
          clearTimeout(timer);
          return done(value);
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`chaperone up exited (${code}) before it was ready:\n${tail(log.stderr)}`));
    });
  });
  if (info.error) throw new Error(`chaperone up failed: ${JSON.stringify(info)}`);
  return { child, info, log };
}

/** Ctrl-C for `up`, then its Anvil if `up` could not stop it. */
async function stop(devnet, dataDir) {
  if (devnet?.child.exitCode === null) {
    const exited = new Promise((done) => devnet.child.once("exit", done));
    devnet.child.kill("SIGINT");
    const timer = setTimeout(() => devnet.child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
  const pidFile = join(dataDir, "anvil.pid");
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8"));
    const cmdline = existsSync(`/proc/${pid}/cmdline`)
      ? readFileSync(`/proc/${pid}/cmdline`, "utf8")
      : "";
    if (pid > 0 && cmdline.includes("anvil")) process.kill(pid, "SIGTERM");
  }
}

/**
 * An x402 merchant: `GET /<method>` costs PRICE, paid with that method ("eip3009" or
 * "permit2"); the payment is verified and settled by `facilitator`. Every paid request is kept
 * in `paid` (payload, requirements, verify and settle answers).
 */
async function merchant(facilitator, requirementsFor) {
  const paid = [];
  const server = createServer(async (request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    const method = url.pathname.slice(1);
    const requirements = requirementsFor(method);
    if (!requirements) {
      response.writeHead(404).end();
      return;
    }
    const refuse = (error) => {
      const required = {
        x402Version: 2,
        error,
        resource: {
          url: `http://127.0.0.1:${server.address().port}${url.pathname}`,
          description: "Today's weather in Lisbon",
          mimeType: "text/plain",
        },
        accepts: [requirements],
      };
      response
        .writeHead(402, {
          "Content-Type": "application/json",
          "PAYMENT-REQUIRED": encodePaymentRequiredHeader(required),
        })
        .end(JSON.stringify(required));
    };
    const header = request.headers["payment-signature"];
    if (!header) return refuse("Payment required");
    const record = { method, requirements };
    paid.push(record);
    try {
      record.payload = decodePaymentSignatureHeader(header);
      record.verify = await facilitator.verify(record.payload, requirements);
      if (!record.verify.isValid) {
        return refuse(`${record.verify.invalidReason}: ${record.verify.invalidMessage ?? ""}`);
      }
      record.settle = await facilitator.settle(record.payload, requirements);
      if (!record.settle.success) {
        return refuse(`${record.settle.errorReason}: ${record.settle.errorMessage ?? ""}`);
      }
      response
        .writeHead(200, {
          "Content-Type": "text/plain",
          "PAYMENT-RESPONSE": encodePaymentResponseHeader(record.settle),
        })
        .end("Sunny, 24 °C");
    } catch (e) {
      record.error = e.stack ?? String(e);
      response.writeHead(500).end(String(e));
    }
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  return { server, paid, url: (method) => `http://127.0.0.1:${server.address().port}/${method}` };
}

const dataDir = mkdtempSync(join(tmpdir(), "chaperone_x402_ts_"));
let devnet;
let shop;
let facilitator;
let publicClient;
let info;

before(async () => {
  devnet = await up(dataDir);
  info = devnet.info;
  assert.ok(info.counterfactual_wallet, `no counterfactual wallet: ${JSON.stringify(info)}`);
  const chain = viem.defineChain({
    id: info.chain_id,
    name: "chaperone devnet",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [info.rpc_url] } },
  });
  const account = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 1 });
  const client = viem
    .createWalletClient({
      account,
      chain,
      transport: viem.http(info.rpc_url),
      pollingInterval: 200,
    })
    .extend(viem.publicActions);
  publicClient = client;
  assert.ok(
    (await client.getBalance({ address: account.address })) > 0n,
    `the facilitator's account ${account.address} (Anvil's dev account 1) has no ether ` +
      `on ${info.rpc_url}`,
  );
  // The facilitator signer, as @x402/evm's FacilitatorEvmSigner type describes it.
  const signer = toFacilitatorEvmSigner({
    address: account.address,
    readContract: (args) => client.readContract(args),
    verifyTypedData: (args) => client.verifyTypedData(args),
    writeContract: (args) => client.writeContract(args),
    sendTransaction: (args) => client.sendTransaction(args),
    waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
    getCode: (args) => client.getCode(args),
  });
  const network = `eip155:${info.chain_id}`;
  facilitator = registerExactEvmScheme(new x402Facilitator(), {
    signer,
    networks: network,
    // The counterfactual wallet's signature carries a call to the devnet's wallet factory.
    eip6492AllowedFactories: [info.wallet_factory],
  });
  const [, name, version] = await client.readContract({
    address: info.token,
    abi: erc20Abi,
    functionName: "eip712Domain",
  });
  const base = {
    scheme: "exact",
    network,
    asset: viem.getAddress(info.token),
    amount: PRICE.toString(),
    payTo: PAY_TO,
    maxTimeoutSeconds: 120,
  };
  const requirements = {
    eip3009: { ...base, extra: { name, version } },
    permit2: { ...base, extra: { assetTransferMethod: "permit2", name, version } },
  };
  shop = await merchant(facilitator, (method) => requirements[method]);
});

after(async () => {
  shop?.server.close();
  await stop(devnet, dataDir);
  rmSync(dataDir, { recursive: true, force: true });
});

const balanceOf = (address) =>
  publicClient.readContract({
    address: info.token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });

/**
 * The example agent buys `/<method>` (from the counterfactual wallet if asked): the merchant's
 * record of it after asserting that the TS facilitator verified and settled it and the SDK got
 * the settlement.
 */
async function buy(method, { counterfactual = false } = {}) {
  const before = shop.paid.length;
  const args = ["--devnet", join(dataDir, "devnet.json"), "--calls", "0", "--no-pay", "--json"];
  if (counterfactual) args.push("--counterfactual");
  args.push("--x402-url", shop.url(method));
  const { code, stdout, stderr } = await run(agentBin, args);
  const records = shop.paid.slice(before);
  const seen = JSON.stringify(
    records.map(({ method, verify, settle, error }) => ({ method, verify, settle, error })),
    null,
    2,
  );
  assert.equal(
    records.length,
    1,
    `one payment must reach the merchant; it saw:\n${seen}\nthe agent said:\n${tail(stderr)}`,
  );
  const [record] = records;
  assert.ok(!record.error, `the facilitator threw:\n${record.error}`);
  assert.equal(
    record.verify?.isValid,
    true,
    `@x402/evm's verify refused the SDK's ${method} payment:\n${seen}`,
  );
  assert.equal(record.settle?.success, true, `@x402/evm's settle failed:\n${seen}`);
  assert.equal(code, 0, `the agent failed (${code}):\n${tail(stderr)}\n${tail(stdout)}`);
  const summary = JSON.parse(stdout.trim().split("\n").filter((l) => l.startsWith("{")).at(-1));
  const bought = summary.payments.x402_paid_api;
  assert.equal(bought.outcome, "paid", JSON.stringify(bought));
  assert.equal(bought.payment.method, method);
  assert.equal(bought.payment.settlement.success, true, "the SDK read the settlement");
  assert.equal(
    bought.payment.settlement.transaction.toLowerCase(),
    record.settle.transaction.toLowerCase(),
    "the SDK reports the facilitator's transaction",
  );
  return record;
}

/** The same payment again, straight to the facilitator: refused, never settled twice. */
async function replay(record) {
  const verify = await facilitator.verify(record.payload, record.requirements);
  assert.equal(verify.isValid, false, `a replayed payment verified: ${JSON.stringify(verify)}`);
  const settle = await facilitator.settle(record.payload, record.requirements);
  assert.equal(settle.success, false, `a replayed payment settled: ${JSON.stringify(settle)}`);
  return { verify, settle };
}

test("EIP-3009 from the wallet: verified, settled, and a replay is a used nonce", async () => {
  const merchantBefore = await balanceOf(PAY_TO);
  const record = await buy("eip3009");
  assert.equal(viem.getAddress(record.settle.payer), viem.getAddress(info.wallet), "the payer");
  assert.equal(await balanceOf(PAY_TO), merchantBefore + PRICE, "the merchant was paid once");
  const { verify } = await replay(record);
  assert.equal(
    verify.invalidReason,
    NONCE_USED,
    `the replay must be reported as a used nonce, not: ${JSON.stringify(verify)}`,
  );
  assert.equal(await balanceOf(PAY_TO), merchantBefore + PRICE, "and only once");
});

test("Permit2 from the wallet (x402 proxy): verified, settled, a replay refused", async () => {
  const merchantBefore = await balanceOf(PAY_TO);
  const record = await buy("permit2");
  assert.equal(viem.getAddress(record.settle.payer), viem.getAddress(info.wallet), "the payer");
  assert.equal(await balanceOf(PAY_TO), merchantBefore + PRICE, "the merchant was paid once");
  // @x402/evm's Permit2 diagnosis reads no nonce bitmap, so its verify can only call the
  // replay a failed simulation; its settle shows the cause: Permit2's `InvalidNonce()`.
  const { settle } = await replay(record);
  assert.ok(
    JSON.stringify(settle).includes(viem.toFunctionSelector("InvalidNonce()")),
    `the replay's settlement must revert with Permit2's InvalidNonce(), not: ` +
      JSON.stringify(settle),
  );
  assert.equal(await balanceOf(PAY_TO), merchantBefore + PRICE, "and only once");
});

test("EIP-3009 from an undeployed wallet (ERC-6492): deployed, paid, replay refused", async () => {
  const wallet = info.counterfactual_wallet.address;
  assert.equal(await publicClient.getCode({ address: wallet }), undefined, "not deployed by `up`");
  const merchantBefore = await balanceOf(PAY_TO);
  const record = await buy("eip3009", { counterfactual: true });
  assert.ok(
    viem.isErc6492Signature(record.payload.payload.signature),
    "the SDK sent an ERC-6492 signature",
  );
  assert.equal(viem.getAddress(record.settle.payer), viem.getAddress(wallet), "the payer");
  assert.ok(await publicClient.getCode({ address: wallet }), "the facilitator deployed the wallet");
  assert.equal(await balanceOf(PAY_TO), merchantBefore + PRICE, "the merchant was paid once");
  const { verify } = await replay(record);
  assert.equal(
    verify.invalidReason,
    NONCE_USED,
    `the replay must be reported as a used nonce, not: ${JSON.stringify(verify)}`,
  );
});
