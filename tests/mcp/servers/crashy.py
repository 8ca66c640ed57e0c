"""A FastMCP server (the Python `mcp` package's own server) with one tool that works and one
that kills the process while the call is in flight: the gateway's upstream-crash test."""

import os

from mcp.server.fastmcp import FastMCP

server = FastMCP("crashy")


@server.tool()
def add(a: int, b: int) -> str:
    """Adds two numbers."""
    return str(a + b)


@server.tool()
def crash() -> str:
    """Dies mid-call."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
