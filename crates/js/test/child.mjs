// Records forever after a flush; the test kills it with SIGKILL mid-stream.
import { Recorder } from '../index.js';

const [serverUrl, dataFile, agentKey] = process.argv.slice(2);
const recorder = await Recorder.open(serverUrl, dataFile, agentKey, { lingerMs: 1, maxBatch: 50 });
for (let i = 0; i < 300; i++) await recorder.record('gpt-4o', `in ${i}`, `out ${i}`);
await recorder.flush();
process.stdout.write('flushed\n');
for (let i = 300; ; i++) await recorder.record('gpt-4o', `in ${i}`, `out ${i}`);
