"""A hand-written stdio MCP server (standard library only) that writes malformed JSON-RPC
before each answer after `initialize`: a line that is not JSON, and JSON that is no MCP message. The gateway
must skip both and keep serving."""

import json
import sys


def send(message: object, noise: bool = True) -> None:
    if not noise:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
        return
    sys.stdout.write("this is not json\n")
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": "nobody-asked", "result": 5}) + "\n")
    sys.stdout.write(json.dumps({"jsonrpc": "1.0", "what": "no"}) + "\n")
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    if "id" not in request:
        continue
    method, rid = request["method"], request["id"]
    if method == "initialize":
        result: object = {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "noisy", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "shout", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        text = str(request["params"].get("arguments", {}).get("text", "")).upper()
        result = {"content": [{"type": "text", "text": text}]}
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
        continue
    # rmcp refuses an initialize answered next to a stray answer: the noise starts after it.
    send({"jsonrpc": "2.0", "id": rid, "result": result}, noise=method != "initialize")
