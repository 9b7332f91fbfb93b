#!/usr/bin/env python3
"""End-to-end latency of the real `sflowc lsp` process over stdio (pipes and JSON included),
on the same ~5000-line program as benches/lsp.rs (a copy of
sflow_benches::binary_tree_program: keep them in step). Complements the in-process criterion bench.

Usage: cargo build --release -p sflowc && python3 benches/lsp_stdio.py [path/to/sflowc]
Prints p50/p95/p99 of didChange -> publishDiagnostics and of completion requests.
"""

import json
import subprocess
import sys
import time


def program(steps=624):
    out = ['app bench {\n  namespace = "bench"\n  registry  = "ghcr.io/acme"\n}\n\n',
           'workflow tree {\n  param depth: int   = 3\n  param rate:  float = 0.5\n\n']
    for i in range(steps):
        out.append(f"  step s{i} {{\n")
        out.append('    image = "python:3.12-slim"\n')
        if i == 0:
            out.append('    run   = "python gen.py --depth {{depth}} --rate {{rate}} --out {{outputs.data}}"\n')
        else:
            out.append('    run   = "python step.py --depth {{depth}} --rate {{rate}} --in {{inputs.parent}} --out {{outputs.data}}"\n')
            out.append(f"    input  parent: Dataset = s{(i - 1) // 2}.data\n")
        out.append("    output data: Dataset\n")
        out.append("    resources { cpu = 500m, memory = 512Mi }\n")
        out.append("    retry 2 backoff 10s\n")
        out.append("  }\n")
    out.append("}\n")
    return "".join(out)


class Client:
    def __init__(self, binary):
        self.p = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def read(self):
        length = 0
        while True:
            line = self.p.stdout.readline().decode().strip()
            if not line:
                break
            if line.startswith("Content-Length:"):
                length = int(line.split(":")[1])
        return json.loads(self.p.stdout.read(length))

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            msg = self.read()
            if msg.get("id") == self.next_id and "method" not in msg:
                return msg

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_diagnostics(self, version):
        while True:
            msg = self.read()
            if msg.get("method") == "textDocument/publishDiagnostics" and msg["params"].get("version") == version:
                return msg["params"]["diagnostics"]


def pct(samples):
    s = sorted(samples)
    at = lambda p: s[min(len(s) - 1, int(len(s) * p))] * 1000
    return f"p50 {at(0.5):7.2f} ms   p95 {at(0.95):7.2f} ms   p99 {at(0.99):7.2f} ms   (n = {len(s)})"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/sflowc"
    text = program()
    uri = "file:///bench/main.sflow"
    c = Client(binary)
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "sflow", "version": 1, "text": text}})
    assert c.wait_diagnostics(1) == []
    lines = text.split("\n")
    digit_line = next(i for i, l in enumerate(lines) if "param depth" in l)
    digit_col = lines[digit_line].index("= 3") + 2
    member_line = next(i for i, l in enumerate(lines) if "= s300.data" in l)
    member_col = lines[member_line].index("s300.") + len("s300.")
    changes, completions = [], []
    version = 1
    for _ in range(200):
        version += 1
        digit = "4" if version % 2 == 0 else "3"
        start = time.perf_counter()
        c.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": digit_line, "character": digit_col},
                                          "end": {"line": digit_line, "character": digit_col + 1}}, "text": digit}]})
        assert c.wait_diagnostics(version) == []
        changes.append(time.perf_counter() - start)
        start = time.perf_counter()
        r = c.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                  "position": {"line": member_line, "character": member_col}})
        completions.append(time.perf_counter() - start)
        assert r.get("result"), r
    print(f"sflowc lsp over stdio, {len(lines)}-line program:")
    print(f"  didChange -> publishDiagnostics   {pct(changes)}")
    print(f"  completion after `s300.`          {pct(completions)}")
    c.request("shutdown", None)
    c.notify("exit", None)


if __name__ == "__main__":
    main()
