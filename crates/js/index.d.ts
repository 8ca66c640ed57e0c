// The package's types: the native classes' declarations napi-rs generates from src/ (native.d.ts,
// written by the build), the error classes (errors.d.ts) and the one helper written in
// JavaScript (below).
import type { Devnet } from './native'

export * from './native'
export * from './errors'

/** An agent of a devnet: its key (`0x…`), address and outbox file. */
export interface DevnetAgent {
  key: string
  address: string
  dataFile: string
}

/** The agent `name` of a devnet (`readDevnet()`): its key in `<directory>/<name>.key` (made on
 * first use, mode 0600), its outbox `<directory>/<name>.db`, registered with the devnet's
 * server (again changes nothing). `directory` defaults to the one holding devnet.json. */
export declare function devnetAgent(devnet: Devnet, name: string, directory?: string): Promise<DevnetAgent>
