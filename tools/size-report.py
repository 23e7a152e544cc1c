#!/usr/bin/env python3
"""Where the bytes of a static dockless go: relinks BUILD/tools/dockless with a linker map
(the build's own link command, plus -Wl,-Map) and prints the stripped size and the bytes
each input (library, or archive member with --members) contributes to the loaded sections.

  tools/size-report.py [--members] [--top N] [BUILD]      (BUILD: build-arm)

Sizes are of allocated sections with file contents (.text, .rodata, .eh_frame, .data ...;
not .bss/.tbss) as the map lists them, so they add up to about the stripped file; padding
between sections is not counted.
"""
import argparse
import collections
import os
import re
import shlex
import subprocess
import sys
import tempfile

OUTPUT_SECTION = re.compile(r"^(\.\S+)")
NOBITS = (".bss", ".tbss")
SECTION_LINE = re.compile(r"^\s+(?:\.\S+)?\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)$")


def link_command(build):
    out = subprocess.run(["ninja", "-C", build, "-t", "commands", "tools/dockless"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()
    if not out:
        sys.exit(f"size-report: no link command for tools/dockless in {build}")
    return shlex.split(out[-1])


def contributions(map_path, members):
    sizes = collections.Counter()
    lines = open(map_path, encoding="utf-8", errors="replace").read().split("\n")
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        sys.exit("size-report: unexpected map file (GNU ld's -Map expected)")
    output = ""
    for line in lines[start:]:
        o = OUTPUT_SECTION.match(line)
        if o:
            output = o.group(1)
        m = SECTION_LINE.match(line)
        if not m or int(m.group(1), 16) == 0:  # address 0: a section that was not loaded
            continue
        if output in NOBITS:  # zero-filled at load: memory, but no byte of the file
            continue
        src = os.path.basename(m.group(3))
        if not members:
            src = re.sub(r"\(.*\)$", "", src)
            if src.endswith(".o"):
                src = "project objects (.o)"
        sizes[src] += int(m.group(2), 16)
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", nargs="?", default="build-arm")
    ap.add_argument("--members", action="store_true", help="per archive member, not per library")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    cmd = link_command(args.build)
    strip = "strip"
    if cmd[0].endswith("g++") and "-" in os.path.basename(cmd[0]):
        strip = cmd[0][: -len("g++")] + "strip"  # aarch64-linux-gnu-g++ -> aarch64-linux-gnu-strip
    with tempfile.TemporaryDirectory() as tmp:
        out, map_path = os.path.join(tmp, "dockless"), os.path.join(tmp, "dockless.map")
        i = cmd.index("-o")
        cmd[i + 1] = out
        cmd.append("-Wl,-Map=" + map_path)
        link = subprocess.run(cmd, cwd=args.build, capture_output=True, text=True)
        if link.returncode != 0:
            sys.exit("size-report: relink failed:\n" + link.stderr)
        subprocess.run([strip, out], check=True)
        stripped = os.path.getsize(out)
        sizes = contributions(map_path, args.members)
    total = sum(sizes.values())
    print(f"stripped: {stripped:,} B ({stripped / 1048576:.2f} MiB); mapped sections {total:,} B")
    for name, n in sizes.most_common(args.top):
        print(f"{n:>11,} {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
