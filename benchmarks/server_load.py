"""`genrekit serve` under load: a real server (its own process, as a user starts it) taking bursts of
concurrent 30 s uploads, stalled clients, and 4-hour uploads.

Prints and writes benchmarks/results/server_load_MODEL.{json,md}: per burst the answers (200 / 503), p50 / p95
latency of the predictions served, the server's peak resident memory (VmHWM, over the whole run) and its
memory after each scenario; the machine's load average (os.getloadavg) before and after, with UTC times,
since other work on the machine slows every figure here.

    python benchmarks/server_load.py [--model fast] [--bursts 20 50] [--stalled 300]
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

RESULTS = Path(__file__).resolve().parent / "results"
SR = 44100


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb(pid, field):
    """A memory figure of /proc/PID/status (VmRSS: now, VmHWM: the peak so far), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _machine():
    load = os.getloadavg()
    return {"utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "loadavg_1_5_15": [round(x, 2) for x in load],
            "cpus": os.cpu_count()}


def _song(seconds, seed):
    """A 44.1 kHz stereo 16-bit WAV of `seconds` (tones and noise), as bytes (about 5.3 MB per 30 s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.05 * rng.standard_normal(t.size)
    path = Path(tempfile.mkdtemp()) / "song.wav"
    sf.write(path, np.stack([y, y], axis=1).astype(np.float32), SR, subtype="PCM_16")
    return path.read_bytes()


def _four_hours(folder, unknown_length):
    """A FLAC of four hours at 8 kHz, silence but for a click a minute (a few hundred KB); with `unknown_length`
    its header does not say how long it is (as a streamed FLAC), so only decoding finds out."""
    path = Path(folder) / ("hidden.flac" if unknown_length else "four-hours.flac")
    block = np.zeros(8000 * 60, np.float32)
    block[0] = 0.5
    with sf.SoundFile(path, "w", 8000, 1, format="FLAC") as out:
        for _ in range(4 * 60):
            out.write(block)
    if unknown_length:  # the STREAMINFO total-samples field: 0 is "unknown"
        data = bytearray(path.read_bytes())
        data[21] &= 0xF0
        data[22:26] = bytes(4)
        path.write_bytes(data)
    return path.read_bytes()


async def _post(http, name, content):
    began = time.perf_counter()
    try:
        response = await http.post("/api/predict", files={"file": (name, content)})
        status = response.status_code
    except httpx.HTTPError as error:
        status = type(error).__name__
    return status, time.perf_counter() - began


def _percentile(values, q):
    return round(float(np.percentile(values, q)), 2) if values else None


async def _burst(base, n, song):
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        began = time.perf_counter()
        answers = await asyncio.gather(*(_post(http, f"song{i}.wav", song) for i in range(n)))
        wall = time.perf_counter() - began
    served = [seconds for status, seconds in answers if status == 200]
    refused = [seconds for status, seconds in answers if status == 503]
    counts = {}
    for status, _ in answers:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return {"uploads": n, "answers": counts, "p50_s": _percentile(served, 50), "p95_s": _percentile(served, 95),
            "max_s": _percentile(served, 100), "refusal_p95_s": _percentile(refused, 95), "wall_s": round(wall, 2)}


async def _stalled(base, host, port, n, song, timeout):
    """`n` clients that send half their request headers and stop, then one normal upload meanwhile."""
    readers = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; bo")
        readers.append((reader, writer))
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        status, seconds = await _post(http, "song.wav", song)
    began = time.perf_counter()
    closed = await asyncio.gather(*(asyncio.wait_for(reader.read(), timeout * 3) for reader, _ in readers),
                                  return_exceptions=True)
    for _, writer in readers:
        writer.close()
    return {"stalled_clients": n, "closed_by_server": sum(c == b"" for c in closed),
            "all_closed_after_s": round(time.perf_counter() - began, 2), "header_timeout_s": timeout,
            "upload_meanwhile": {"status": status, "seconds": round(seconds, 2)}}


async def _long(base, name, content):
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        began = time.perf_counter()
        response = await http.post("/api/predict", files={"file": (name, content)})
        return {"upload_kb": len(content) // 1024, "status": response.status_code,
                "seconds": round(time.perf_counter() - began, 2), "error": response.json().get("error")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fast")
    parser.add_argument("--bursts", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--stalled", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=5.0, help="The server's --timeout.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    port, host = _free_port(), "127.0.0.1"
    base = f"http://{host}:{port}"
    command = [sys.executable, "-c", "from genrekit.cli import main; main()", "serve", "--model", args.model,
               "--port", str(port), "--timeout", str(args.timeout)]
    song = _song(30.0, 0)
    with tempfile.TemporaryDirectory() as folder:
        four_hours, hidden = _four_hours(folder, False), _four_hours(folder, True)
    result = {"command": " ".join(command[3:]), "machine_before": _machine(), "song": "30 s, 44.1 kHz stereo WAV, "
              f"{len(song) / 2**20:.1f} MB"}
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        began = time.perf_counter()
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise SystemExit(f"the server did not start: {server.stderr.read()}")
            time.sleep(0.2)
        result["startup_s"] = round(time.perf_counter() - began, 2)
        result["rss_idle_mb"] = round(_memory_mb(server.pid, "VmRSS"))
        asyncio.run(_burst(base, 1, song))  # warm up (first-call costs)
        result["bursts"] = []
        for n in args.bursts:
            burst = asyncio.run(_burst(base, n, song))
            burst["rss_after_mb"] = round(_memory_mb(server.pid, "VmRSS"))
            result["bursts"].append(burst)
            print(f"{n} concurrent uploads: {burst}", flush=True)
        result["stalled"] = asyncio.run(_stalled(base, host, port, args.stalled, song, args.timeout))
        print(f"stalled clients: {result['stalled']}", flush=True)
        result["four_hours"] = {"header_says_4h": asyncio.run(_long(base, "four-hours.flac", four_hours)),
                                "header_silent": asyncio.run(_long(base, "hidden.flac", hidden))}
        print(f"4-hour uploads: {result['four_hours']}", flush=True)
        result["rss_end_mb"] = round(_memory_mb(server.pid, "VmRSS"))
        result["rss_peak_mb"] = round(_memory_mb(server.pid, "VmHWM"))
    finally:
        server.terminate()
        server.wait(30)
    result["machine_after"] = _machine()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"server_load_{Path(args.model).stem}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Server under load ({result['machine_before']['utc']} to {result['machine_after']['utc']} UTC)", "",
             f"`genrekit {result['command']}` (defaults: 2 predictions at once, 4 waiting); uploads: {result['song']}.",
             f"Load average (1, 5, 15 min) before {result['machine_before']['loadavg_1_5_15']}, after "
             f"{result['machine_after']['loadavg_1_5_15']}, on {result['machine_before']['cpus']} CPUs shared "
             "with other work.", "",
             "| concurrent uploads | answers | p50 s | p95 s | 503 p95 s | RSS after, MB |", "|---|---|---|---|---|---|"]
    for burst in result["bursts"]:
        lines.append(f"| {burst['uploads']} | {burst['answers']} | {burst['p50_s']} | {burst['p95_s']} | "
                     f"{burst['refusal_p95_s']} | {burst['rss_after_mb']} |")
    stalled, long = result["stalled"], result["four_hours"]
    lines += ["", f"Server RSS: idle {result['rss_idle_mb']} MB, peak {result['rss_peak_mb']} MB (VmHWM), at the end "
              f"{result['rss_end_mb']} MB.",
              f"{stalled['stalled_clients']} clients stalled in their headers: {stalled['closed_by_server']} closed by "
              f"the server within {stalled['all_closed_after_s']} s (timeout {stalled['header_timeout_s']} s); an "
              f"upload meanwhile: {stalled['upload_meanwhile']['status']} in {stalled['upload_meanwhile']['seconds']} s.",
              f"4-hour FLAC ({long['header_says_4h']['upload_kb']} KB): {long['header_says_4h']['status']} in "
              f"{long['header_says_4h']['seconds']} s from its header; with no length in the header: "
              f"{long['header_silent']['status']} in {long['header_silent']['seconds']} s (decoded up to the limit)."]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
