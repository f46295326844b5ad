#!/usr/bin/env python3
"""Extracts the command blocks of a Markdown file for test_docs.sh (docs that run as written).

A fenced block whose info string is `sh` is a command block, run with /bin/sh (dash on Debian):
  - by default it runs in the foreground, in file order, all blocks of a file in one shell;
  - a first line `# in a second terminal...` runs it in the background (it is a server), and the
    next block waits until each `--listen HOST:PORT` in it accepts connections;
  - a first line `# not run by the docs test: REASON` is skipped, visibly, with its reason.
Other shells' spellings (bash, shell, console, zsh) are refused, so a new command block cannot
escape the test by its info string. Config blocks (nginx, haproxy, apache, ini) are written out
for the checks test_docs.sh makes on them.

Usage:
  docs_blocks.py script FILE.md OUT_DIR [NAME]  (NAME: the file's name in the output) writes OUT_DIR/run.sh (and bgN.sh, CONFIG files), and
                                           prints one line per block: LINE KIND [REASON]
  docs_blocks.py wait HOST:PORT [SECONDS]  waits until HOST:PORT accepts a TCP connection
"""
import os
import re
import socket
import sys
import time

SKIP = re.compile(r"^#\s*not run by the docs test:\s*(\S.*)$")
BACKGROUND = re.compile(r"^#\s*in a second terminal")
REFUSED = {"bash", "shell", "console", "zsh", "shell-session"}
CONFIGS = {"nginx", "haproxy", "apache", "ini"}


def blocks(path):
    """Yields (line number of the opening fence, info string, text) for each fenced block."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([^\s`]*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3)
        start = i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        yield start, info, "\n".join(body) + "\n"


def script(md, out, name):
    os.makedirs(out, exist_ok=True)
    run = ["set -e"]
    nbg = 0
    waits = []
    counts = {}
    for line, info, text in blocks(md):
        if info in REFUSED:
            sys.exit(f"{md}:{line}: a ```{info} block: command blocks are ```sh (run by the "
                     "docs test) and start with '# not run by the docs test: REASON' when they "
                     "cannot run")
        if info in CONFIGS:
            counts[info] = counts.get(info, 0) + 1
            with open(os.path.join(out, f"{info}{counts[info]}.conf"), "w") as f:
                f.write(text)
            print(f"{line} config {info}{counts[info]}.conf")
            continue
        if info != "sh":
            continue
        first = text.split("\n", 1)[0]
        m = SKIP.match(first)
        if m:
            print(f"{line} skipped {m.group(1)}")
            continue
        if first.startswith("#") and "not run" in first:
            sys.exit(f"{md}:{line}: write '# not run by the docs test: REASON'")
        run.append(f"echo \"==== {name}:{line} $(date +%T)\" >&2")
        for w in waits:
            run.append(f"python3 '{os.path.abspath(__file__)}' wait {w} 30")
        waits = []
        if BACKGROUND.match(first):
            nbg += 1
            bg = os.path.join(out, f"bg{nbg}.sh")
            with open(bg, "w") as f:
                f.write("set -e\n" + text)
            run.append(f"sh '{bg}' >'{out}/bg{nbg}.log' 2>&1 &")
            waits = re.findall(r"--listen\s+(\S+:\d+)", text)
            if not waits:
                sys.exit(f"{md}:{line}: a second-terminal block with no --listen HOST:PORT to "
                         "wait for")
            print(f"{line} background")
        else:
            run.append(text)
            print(f"{line} run")
    for w in waits:
        run.append(f"python3 '{os.path.abspath(__file__)}' wait {w} 30")
    with open(os.path.join(out, "run.sh"), "w") as f:
        f.write("\n".join(run) + "\n")


def wait(hostport, seconds):
    host, port = hostport.rsplit(":", 1)
    host = host.strip("[]")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {hostport} after {seconds} s")


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "script":
        script(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else sys.argv[2])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "wait":
        wait(sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else 30)
    else:
        sys.exit(__doc__)
